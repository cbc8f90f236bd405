"""Last step: register trained models in MLflow; each gets an integer model ID.

Registering is idempotent: a model already registered for the same job run and
trial is found and returned, so a retried upload (or a resumed job) never adds
a second version of a model. A search registers its trials' models while it
runs (see ``unitrain.tune.registrar``); this step registers what is left and
marks the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task

from unitrain.job.plan import JobPlan
from unitrain.stores.registry import ModelRegistry
from unitrain.ui.progress import JobProgress


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
    #: set when the model is registered already (while the search ran)
    model_id: int | None = None


@task(name="upload_models", retries=2, retry_delay_seconds=5)
def upload_models(plan: JobPlan, uploads: list[ModelUpload], progress: JobProgress) -> list[int]:
    """Register each model folder not registered yet, mark the best; return the model IDs."""
    registry = ModelRegistry()
    step = progress.step("model_upload")
    model_ids: list[int] = []
    known: dict[str, dict[str, int]] = {}  # job run -> trial -> model ID, read once
    for upload in uploads:
        model_id = upload.model_id
        if model_id is None:
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
        step.update(len(model_ids), len(uploads))
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
