"""Last step: register trained models in MLflow; each gets an integer model ID."""

from __future__ import annotations

from prefect import get_run_logger, task

from unitrain.jobs import JobPlan
from unitrain.registry import ModelRegistry


@task(name="upload_models")
def upload_model(
    plan: JobPlan,
    run_id: str,
    model_dir: str,
    metrics: dict[str, float],
    hyperparameter: dict,
    trial_id: str = "",
    best: bool = False,
) -> int:
    """Upload one model folder into its MLflow run and register it as a new version."""
    registry = ModelRegistry()
    model_id = registry.register(
        run_id=run_id,
        model_dir=model_dir,
        job=plan.job,
        plugin=plan.plugin,
        dataset=plan.dataset.id,
        hyperparameters=hyperparameter,
        metrics=metrics,
        trial_id=trial_id,
    )
    if best:
        registry.mark_best(model_id, plan.job)
    get_run_logger().info("registered model %s for job %r", model_id, plan.job)
    return model_id
