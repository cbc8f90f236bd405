"""Last step: register trained models in MLflow; each gets an integer model ID.

Registering is idempotent: a model already registered for the same job run and
trial is found and returned, so a retried upload (or a resumed job) never adds
a second version of a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task

from unitrain.job.plan import JobPlan
from unitrain.stores.registry import ModelRegistry


@dataclass(frozen=True)
class ModelUpload:
    """One model folder to register, with what its version is tagged with."""

    run_id: str
    model_dir: str
    metrics: dict[str, float]
    hyperparameter: dict[str, Any]
    trial_id: str = ""
    best: bool = False
    artifact_path: str = "model"
    #: the job's own run (training run, or tuning parent run): part of the idempotency key
    job_run: str = ""


@task(name="upload_models", retries=2, retry_delay_seconds=5)
def upload_models(plan: JobPlan, uploads: list[ModelUpload]) -> list[int]:
    """Upload each model folder into its MLflow run and register it; return the model IDs.

    Models travel in batches: one task per batch keeps the per-task cost of
    Prefect and Ray small when a search registers hundreds of trial models.
    """
    registry = ModelRegistry()
    logger = get_run_logger()
    model_ids = []
    known: dict[str, dict[str, int]] = {}  # job run -> trial -> model ID, read once
    for upload in uploads:
        if upload.job_run and upload.job_run not in known:
            known[upload.job_run] = registry.registered_trials(plan.job, upload.job_run)
        model_id = registry.register(
            run_id=upload.run_id,
            model_dir=upload.model_dir,
            job=plan.job,
            plugin=plan.plugin,
            dataset=plan.dataset.id,
            hyperparameters=upload.hyperparameter,
            metrics=upload.metrics,
            trial_id=upload.trial_id,
            artifact_path=upload.artifact_path,
            job_run=upload.job_run,
            existing=known.get(upload.job_run),
        )
        if upload.best:
            registry.mark_best(model_id, plan.job)
        model_ids.append(model_id)
    logger.info("registered model %s for job %r", _ranges(model_ids), plan.job)
    return model_ids


def _ranges(ids: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: one readable log line per batch."""
    parts: list[str] = []
    for model_id in sorted(ids):
        if parts and parts[-1].split("-")[-1] == str(model_id - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{model_id}"
        else:
            parts.append(str(model_id))
    return ", ".join(parts)


def batches(
    uploads: list[ModelUpload], count: int, *, min_size: int = 250
) -> list[list[ModelUpload]]:
    """Split ``uploads`` into at most ``count`` batches of at least ``min_size``, keeping order.

    A batch costs a Ray worker (seconds to start on a small machine), so a few
    models go in one batch and only large searches fan out.
    """
    count = max(1, min(count, len(uploads) // max(min_size, 1)))
    size, extra = divmod(len(uploads), count)
    result, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        result.append(uploads[start:end])
        start = end
    return [batch for batch in result if batch]
