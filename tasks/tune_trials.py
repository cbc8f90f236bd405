"""Step 3 (tuning mode): run the Ray Tune search; one MLflow child run per trial."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.errors import UnitrainError
from unitrain.job.names import job_folder
from unitrain.job.plan import TuningPlan
from unitrain.metrics import finite_metrics
from unitrain.plugin_api import Dataset
from unitrain.settings import settings
from unitrain.stores.registry import TAG, ModelRegistry
from unitrain.tune.results import TrialOutcome, TrialResult, TuneOutcome
from unitrain.tune.trial import TrialSetup
from unitrain.ui.progress import JobProgress


@task(name="tune")
def tune_trials(plan: TuningPlan, dataset: Dataset, progress: JobProgress) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from unitrain.tune.callback import TrialsLoggingCallback
    from unitrain.tune.schedulers import build_scheduler
    from unitrain.tune.searchers import build_search_alg
    from unitrain.tune.trial import make_trainable

    logger = get_run_logger()
    config = plan.config
    registry = ModelRegistry()
    flow_run_id = flow_run.get_id() or "local"
    root = job_folder(settings().storage_dir(), plan.job) / flow_run_id
    searcher, param_space = build_search_alg(plan.space, plan.hyperparameter, config)
    callback = TrialsLoggingCallback(
        job=plan.job,
        metric=config.metric,
        hyperparameters=plan.searched_names,
        total_trials=plan.total_trials,
        progress=progress.step("trials"),
    )
    parent_id = registry.start_run(plan, run_name=plan.job, tags={TAG.FLOW_RUN: flow_run_id})
    setup = TrialSetup(plan, dataset, str(root / "trials"), parent_id, registry.tracking_uri)
    status = "FAILED"
    try:
        tuner = tune.Tuner(
            tune.with_resources(
                make_trainable(setup), {"cpu": plan.num_cpus, "gpu": plan.num_gpus}
            ),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=config.metric,
                mode=config.mode,
                # max_concurrent_trials is applied by the search algorithm (searchers)
                search_alg=searcher,
                scheduler=build_scheduler(config),
                # A grid runs every point num_samples / grid times: num_samples is the total.
                num_samples=plan.total_trials // plan.grid_size,
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
        logger.info(
            "tuning %r: %d trials on %s", plan.job, plan.total_trials, ray.cluster_resources()
        )
        try:
            results = tuner.fit()
        except Exception as error:
            raise UnitrainError(f"the Ray Tune search failed: {error}") from None
        trials = [
            _outcome(
                results[index], setup, callback.reported(_id_of(results[index])), config.metric
            )
            for index in range(len(results))
        ]
        for trial in trials:
            if trial.status == "ERROR" and trial.mlflow_run_id:
                # A trial the driver failed (its metric is missing) ran to its end.
                registry.end_run(trial.mlflow_run_id, "FAILED")
        status = "FINISHED"
    finally:
        table = callback.finish()
        registry.end_run(parent_id, status)
    for trial in trials:  # the driver may have failed a trial Ray saw finish
        if trial.status == "ERROR":
            table.trials.setdefault(trial.trial_id, {})["status"] = "ERROR"
    failed = [t for t in trials if t.status == "ERROR"]
    logger.info("%d trials finished, %d failed", len(trials) - len(failed), len(failed))
    return TuneOutcome(parent_run_id=parent_id, trials=trials, table=table)


def _id_of(result: Any) -> str:
    """Ray's trial ID; a trial that never reported has it only as its folder's name."""
    trial_id = (result.metrics or {}).get("trial_id")
    return str(trial_id) if trial_id else Path(result.path).name


def _outcome(
    result: Any, setup: TrialSetup, reported: dict[str, float], metric: str
) -> TrialOutcome:
    """Join Ray's view of a trial with the trial's own result file."""
    trial_id = _id_of(result)
    own = TrialResult.load(setup.folder(trial_id))
    # What reached Ray (including what a plugin reported to Ray itself), under
    # what the trial recorded at its end.
    metrics = {
        **reported,
        **finite_metrics(result.metrics or {}),
        **(own.metrics if own else {}),
    }
    error = str(result.error or "")
    if not error and own is not None and own.status == "FINISHED" and metric not in metrics:
        error = (
            f"trial {trial_id} reported no {metric!r} (tune_config.metric); it reported "
            f"{sorted(metrics) or 'nothing'}: return it, report it, or log it"
        )
    return TrialOutcome(
        trial_id=trial_id,
        status="ERROR" if error else "TERMINATED",
        config=dict(result.config or {}),
        metrics={k: v for k, v in metrics.items() if k in _plugin_metrics(metrics)},
        trial_logdir=str(result.path),
        model_dir=own.model_dir if own else "",
        mlflow_run_id=own.mlflow_run_id if own else "",
        error=error[:2000],
        finished_at=float((result.metrics or {}).get("timestamp") or 0.0),
        hyperparameters=own.hyperparameters if own else dict(result.config or {}),
        ended=own.status if own else "",
    )


def _plugin_metrics(metrics: dict[str, float]) -> set[str]:
    from unitrain.tune.callback import RAY_BOOKKEEPING

    return set(metrics) - RAY_BOOKKEEPING
