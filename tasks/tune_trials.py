"""Step 3 (tuning mode): run the Ray Tune search; one MLflow child run per trial."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.catalog import Dataset
from unitrain.errors import UnitrainError
from unitrain.home import storage_dir
from unitrain.jobs import JobPlan
from unitrain.names import job_folder
from unitrain.progress import JobProgress
from unitrain.registry import TAG, ModelRegistry
from unitrain.trial_table import TrialTable


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, float]
    trial_logdir: str
    checkpoint_dir: str
    mlflow_run_id: str
    error: str = ""
    finished_at: float = 0.0


@dataclass(frozen=True)
class TuneOutcome:
    parent_run_id: str
    trials: list[TrialOutcome]
    table: TrialTable
    notes: list[str] = field(default_factory=list)


@task(name="tune")
def tune_trials(plan: JobPlan, dataset: Dataset, progress: JobProgress) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from unitrain.resources import check_trial_resources
    from unitrain.schedulers import build_scheduler
    from unitrain.search_algorithms import build_search_alg
    from unitrain.trial import TrialSetup, make_trainable
    from unitrain.tune_callback import TrialsLoggingCallback

    logger = get_run_logger()
    params = plan.params
    config = params.tune_config
    assert config is not None and params.hyperparameters is not None
    num_cpus, num_gpus = params.num_cpus or 1.0, params.num_gpus or 0.0
    check_trial_resources(num_cpus, num_gpus)
    for entry in params.hyperparameters:
        if entry.q_defaulted:
            logger.info(
                "%s: no q given, using q=%s", entry.name, getattr(entry, "effective_q", None)
            )

    registry = ModelRegistry()
    flow_run_id = flow_run.get_id() or "local"
    root = job_folder(storage_dir(), plan.job) / flow_run_id
    parent = registry.client.create_run(
        registry.experiment_id(),
        run_name=plan.job,
        tags={
            TAG.JOB: plan.job,
            TAG.PLUGIN: plan.plugin,
            TAG.DATASET: str(plan.dataset.id),
            TAG.FLOW_RUN: flow_run_id,
            TAG.CHECKPOINT: str(plan.checkpoint_id or ""),
        },
    )
    parent_id = parent.info.run_id
    searcher, param_space = build_search_alg(params.hyperparameters, plan.hyperparameter, config)
    grid = params.grid_size
    total = params.total_trials
    callback = TrialsLoggingCallback(
        job=plan.job,
        metric=config.metric,
        hyperparameters=[e.name for e in params.hyperparameters],
        total_trials=total,
        progress=progress.step("trials"),
    )
    setup = TrialSetup(plan, dataset, str(root / "trials"), parent_id, registry.tracking_uri)
    trainable = tune.with_resources(make_trainable(setup), {"cpu": num_cpus, "gpu": num_gpus})
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=config.metric,
            mode=config.mode,
            search_alg=searcher,
            scheduler=build_scheduler(config),
            # A grid runs every point num_samples / grid times: num_samples is the total.
            num_samples=total // grid if grid > 1 else total,
            # max_concurrent_trials is applied by the search algorithm (see search_algorithms)
            reuse_actors=True,
            trial_name_creator=lambda trial: trial.trial_id,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(
            name="ray",
            storage_path=str(root),
            # Only the JSON logger (Result reads it); CSV and TensorBoard files cost time.
            callbacks=[callback, JsonLoggerCallback()],
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    logger.info("tuning %r: %d trials on %s", plan.job, total, ray.cluster_resources())
    try:
        results = tuner.fit()
    except Exception as error:
        registry.client.set_terminated(parent_id, "FAILED")
        raise UnitrainError(f"the Ray Tune search failed: {error}") from None
    table = callback.finish()
    trials = [_outcome(results[index]) for index in range(len(results))]
    registry.client.set_terminated(parent_id, "FINISHED")
    failed = [t for t in trials if t.status == "ERROR"]
    logger.info("%d trials finished, %d failed", len(trials) - len(failed), len(failed))
    return TuneOutcome(parent_run_id=parent_id, trials=trials, table=table)


def _outcome(result: Any) -> TrialOutcome:
    metrics = dict(result.metrics or {})
    trial_id = str(metrics.get("trial_id") or _trial_id_from_path(result.path))
    checkpoint_dir = metrics.get("checkpoint_output") or (
        result.checkpoint.path if result.checkpoint is not None else ""
    )
    numbers = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in _BOOKKEEPING
    }
    return TrialOutcome(
        trial_id=trial_id,
        status="ERROR" if result.error else "TERMINATED",
        config=dict(result.config or {}),
        metrics=numbers,
        trial_logdir=str(result.path),
        checkpoint_dir=str(checkpoint_dir or ""),
        mlflow_run_id=str(metrics.get("mlflow_run_id", "")),
        error=str(result.error or "")[:2000],
        finished_at=float(metrics.get("timestamp") or 0.0),
    )


def _trial_id_from_path(path: str) -> str:
    import hashlib

    return hashlib.sha256(str(path).encode()).hexdigest()[:8]


_BOOKKEEPING = {
    "time_this_iter_s",
    "time_total_s",
    "timestamp",
    "training_iteration",
    "pid",
    "done",
    "time_since_restore",
    "iterations_since_restore",
    "epoch",
    "trial_id",
}
