"""Last step: publish the models not published yet; each gets an integer model ID.

Publishing is idempotent (``unitrain.stores.publisher``): a model already
registered for the same job run and trial is found and returned, so a retried
upload (or a resumed job) never adds a second version of a model. A search
publishes its trials' models while it runs; this step publishes what is left
(the training run's model, or a search's ``keep_models``).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task

from unitrain.job.plan import JobPlan
from unitrain.reporting.progress import JobProgress
from unitrain.stores.publisher import ModelPublisher, Publication


@task(name="upload_models", retries=2, retry_delay_seconds=5)
def upload_models(
    plan: JobPlan,
    job_run: str,
    publications: Sequence[Publication],
    progress: JobProgress,
    published: dict[str, int] | None = None,
) -> list[int]:
    """Publish each model, in order; return their model IDs.

    ``published`` are the models (trial ID -> model ID) known to be published already.
    """
    publisher = ModelPublisher(plan, job_run)
    step = progress.step("model_upload")
    model_ids: list[int] = []
    for publication in publications:
        known = (published or {}).get(publication.trial_id)
        model_ids.append(known if known is not None else publisher.publish(publication))
        step.update(len(model_ids), len(publications))
    step.complete()
    get_run_logger().info("registered model %s for job %r", _ranges(model_ids), plan.job)
    return model_ids


def _ranges(ids: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: one readable log line."""
    parts: list[str] = []
    for model_id in sorted(ids):
        if parts and parts[-1].split("-")[-1] == str(model_id - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{model_id}"
        else:
            parts.append(str(model_id))
    return ", ".join(parts)
