"""The ``train`` flow: validate -> prepare dataset -> train or tune -> register -> result.

::

    validate ─> prepare_dataset ─> train ──────────────────────────────> upload_models ─> promote
                                └> tune ─> log_trials ─> register_best ─> upload_models ─> promote

(``promote``: only for a job that names an alias to promote its model to.)
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_progress_artifact
from prefect.runtime import flow_run
from prefect_ray.context import remote_options

from unitrain.flows.tune import run_tuning
from unitrain.job.names import encode_job_name
from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.job.records import Dataset
from unitrain.reporting.progress import JobProgress
from unitrain.runtime.job_run import JobRun, job_run
from unitrain.runtime.ray_cluster import UnitrainTaskRunner, result_of
from unitrain.stores.publisher import Publication
from unitrain.tasks import (
    prepare_dataset,
    promote_model,
    train_model,
    upload_models,
    validate_job,
)
from unitrain.ui.summary import publish_summary


def _run_name() -> str:
    name = flow_run.parameters.get("name") or "job"
    try:
        return encode_job_name(str(name))
    except ValueError:
        return "invalid-job-name"


@flow(
    name="train",
    flow_run_name=_run_name,
    task_runner=UnitrainTaskRunner(),
    validate_parameters=False,  # the job's own validation gives the better messages
    log_prints=True,
)
def train(
    name: str,
    dataset: int | str,
    checkpoint: int | str | None = None,
    is_tune: bool = False,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    hyperparameter: dict[str, Any] | None = None,
    hyperparameters: list[dict[str, Any]] | None = None,
    tune_config: dict[str, Any] | None = None,
    promotion: dict[str, Any] | None = None,
    plugin: str | None = None,
    plan: JobPlan | None = None,
) -> dict[str, Any]:
    """Train a model with fixed hyperparameters, or tune them with Ray Tune (``is_tune``).

    ``plan`` is for callers in this process that planned the job already
    (``unitrain run``); the flow then runs exactly that plan.
    """
    params = {
        key: value
        for key, value in dict(
            name=name,
            dataset=dataset,
            checkpoint=checkpoint,
            is_tune=is_tune,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            hyperparameter=hyperparameter,
            hyperparameters=hyperparameters,
            tune_config=tune_config,
            promotion=promotion,
        ).items()
        if value is not None
    }
    # Light steps run in this process, as tasks of their own; only the work that
    # needs the cluster's cores (training, the trials) goes to Ray workers.
    plan = validate_job(params, plugin, plan)
    with job_run(plan, flow_run.get_id() or "local") as run:
        progress = JobProgress(
            mode=plan.mode,
            artifact_id=str(
                create_progress_artifact(0.0, description=f"Progress of job {plan.job}")
            ),
        )
        prepared = prepare_dataset(plan.dataset, progress, plan.plugin, run.run_id)
        # The one place the two modes part.
        if isinstance(plan, TuningPlan):
            result = run_tuning(run, plan, prepared, progress)
        else:
            result = _run_training(run, plan, prepared, progress)
        progress.finish()
    return result


def _run_training(run: JobRun, plan: JobPlan, dataset: Dataset, progress: JobProgress) -> dict:
    # Training has side effects: Ray must not run it again on its own.
    with remote_options(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_retries=0):
        trained = result_of(train_model.submit(plan, dataset, progress, run.run_id, run.resumed))
    publication = Publication(
        run.run_id, trained.model_dir, trained.metrics, trained.hyperparameters
    )
    [model_id] = upload_models(plan, run.run_id, [publication], progress)
    result: dict[str, Any] = {"model_id": model_id}
    if plan.promotion is not None:
        result["promotion"] = promote_model(plan, model_id, trained.metrics, dataset, run.run_id)
    publish_summary(plan, result, metrics=trained.metrics, run_id=run.run_id)
    return result
