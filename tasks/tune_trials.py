"""Step 3 (tuning mode): run the Ray Tune search; one MLflow child run per trial."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.catalog import Dataset
from unitrain.errors import UnitrainError
from unitrain.home import storage_dir
from unitrain.jobs import JobPlan
from unitrain.names import job_folder
from unitrain.numbers import finite_metrics
from unitrain.progress import JobProgress
from unitrain.registry import TAG, ModelRegistry
from unitrain.trial_table import TrialTable
from unitrain.tune_callback import RAY_BOOKKEEPING


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
    #: every hyperparameter the trial ran with (plugin defaults included)
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuneOutcome:
    parent_run_id: str
    trials: list[TrialOutcome]
    table: TrialTable


@task(name="tune")
def tune_trials(plan: JobPlan, dataset: Dataset, progress: JobProgress) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from unitrain.schedulers import build_scheduler
    from unitrain.search_algorithms import build_search_alg
    from unitrain.trial import TrialSetup, make_trainable
    from unitrain.tune_callback import TrialsLoggingCallback

    logger = get_run_logger()
    params = plan.params
    config = params.tune_config
    assert config is not None and params.hyperparameters is not None
    for entry in params.hyperparameters:
        if entry.q_defaulted:
            logger.info(
                "%s: no q given, using q=%s", entry.name, getattr(entry, "effective_q", None)
            )

    registry = ModelRegistry()
    flow_run_id = flow_run.get_id() or "local"
    root = job_folder(storage_dir(), plan.job) / flow_run_id
    searcher, param_space = build_search_alg(params.hyperparameters, plan.hyperparameter, config)
    grid, total = params.grid_size, params.total_trials
    callback = TrialsLoggingCallback(
        job=plan.job,
        metric=config.metric,
        hyperparameters=[e.name for e in params.hyperparameters],
        total_trials=total,
        progress=progress.step("trials"),
    )
    parent_id = registry.start_run(plan, run_name=plan.job, tags={TAG.FLOW_RUN: flow_run_id})
    status = "FAILED"
    try:
        setup = TrialSetup(plan, dataset, str(root / "trials"), parent_id, registry.tracking_uri)
        resources = {"cpu": params.num_cpus or 1.0, "gpu": params.num_gpus or 0.0}
        tuner = tune.Tuner(
            tune.with_resources(make_trainable(setup), resources),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=config.metric,
                mode=config.mode,
                # max_concurrent_trials is applied by the search algorithm (search_algorithms)
                search_alg=searcher,
                scheduler=build_scheduler(config),
                # A grid runs every point num_samples / grid times: num_samples is the total.
                num_samples=total // grid if grid > 1 else total,
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
            raise UnitrainError(f"the Ray Tune search failed: {error}") from None
        trials = [_outcome(results[index]) for index in range(len(results))]
        status = "FINISHED"
    finally:
        table = callback.finish()
        registry.client.set_terminated(parent_id, status)
    failed = [t for t in trials if t.status == "ERROR"]
    logger.info("%d trials finished, %d failed", len(trials) - len(failed), len(failed))
    return TuneOutcome(parent_run_id=parent_id, trials=trials, table=table)


def _outcome(result: Any) -> TrialOutcome:
    from unitrain.trial import CHECKPOINT_OUTPUT_KEY, HYPERPARAMETERS_KEY, MLFLOW_RUN_KEY

    metrics = dict(result.metrics or {})
    trial_id = str(metrics.get("trial_id") or _trial_id_from_path(result.path))
    checkpoint_dir = metrics.get(CHECKPOINT_OUTPUT_KEY) or (
        result.checkpoint.path if result.checkpoint is not None else ""
    )
    if checkpoint_dir and not (
        Path(checkpoint_dir).is_dir() and any(Path(checkpoint_dir).iterdir())
    ):
        checkpoint_dir = ""  # stopped before it saved a model
    config = dict(result.config or {})
    if metrics.get(HYPERPARAMETERS_KEY):
        config = {**json.loads(metrics[HYPERPARAMETERS_KEY]), **config}
    return TrialOutcome(
        trial_id=trial_id,
        status="ERROR" if result.error else "TERMINATED",
        config=dict(result.config or {}),
        metrics=finite_metrics(metrics, skip=RAY_BOOKKEEPING),
        trial_logdir=str(result.path),
        checkpoint_dir=str(checkpoint_dir or ""),
        mlflow_run_id=str(metrics.get(MLFLOW_RUN_KEY, "")),
        error=str(result.error or "")[:2000],
        finished_at=float(metrics.get("timestamp") or 0.0),
        hyperparameters=config,
    )


def _trial_id_from_path(path: str) -> str:
    """A stable ID for a result that lost Ray's: a digest of its folder."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:8]
