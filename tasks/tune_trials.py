"""Step 3 (tuning mode): run the Ray Tune search; one MLflow child run per trial.

The search lives in the job's folder, not the flow run's: a job run again
after a crash or an interrupt restores it (``Tuner.restore``), so trials that
finished keep their results and the interrupted ones run again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from unitrain.errors import UnitrainError
from unitrain.job.plan import TuningPlan
from unitrain.metrics import finite_metrics
from unitrain.plugin_api import Dataset
from unitrain.runtime.ray_cluster import worker_death
from unitrain.stores.job_state import JobFolder
from unitrain.stores.registry import ModelRegistry
from unitrain.tune.results import TrialOutcome, TrialResult, TuneOutcome
from unitrain.tune.trial import TrialSetup
from unitrain.ui.progress import JobProgress


@task(name="tune")
def tune_trials(
    plan: TuningPlan, dataset: Dataset, progress: JobProgress, run_id: str, resume: bool
) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster, under the job's run ``run_id``."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import ray
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from unitrain._compat import set_tuner_callbacks
    from unitrain.tune.callback import TrialsLoggingCallback
    from unitrain.tune.trial import make_trainable

    logger = get_run_logger()
    config = plan.config
    registry = ModelRegistry()
    folder = JobFolder(plan.job)
    callback = TrialsLoggingCallback(
        job=plan.job,
        metric=config.metric,
        hyperparameters=plan.searched_names,
        total_trials=plan.total_trials,
        progress=progress.step("trials"),
    )
    callbacks = [callback, JsonLoggerCallback()]
    setup = TrialSetup(plan, dataset, str(folder.trials_path), run_id, registry.tracking_uri)
    trainable = tune.with_resources(
        make_trainable(setup), {"cpu": plan.num_cpus, "gpu": plan.num_gpus}
    )
    try:
        if resume and tune.Tuner.can_restore(str(folder.tune_path)):
            logger.info("resuming the search of %r from %s", plan.job, folder.tune_path)
            tuner = tune.Tuner.restore(
                str(folder.tune_path),
                trainable=trainable,
                resume_unfinished=True,
                restart_errored=True,
            )
            set_tuner_callbacks(tuner, callbacks)
        else:
            shutil.rmtree(folder.tune_path, ignore_errors=True)
            tuner = _new_tuner(plan, trainable, callbacks, folder)
        logger.info(
            "tuning %r: %d trials on %s", plan.job, plan.total_trials, ray.cluster_resources()
        )
        try:
            results = tuner.fit()
        except Exception as error:
            raise UnitrainError(f"the Ray Tune search failed: {error}") from None
        trials = [
            _outcome(results[index], setup, callback, config.metric)
            for index in range(len(results))
        ]
        for trial in trials:
            if trial.status == "ERROR" and trial.ended == "FINISHED":
                # The driver failed a trial Ray saw finish (its metric is missing).
                registry.end_run(trial.mlflow_run_id, "FAILED")
                callback.trials.setdefault(trial.trial_id, {})["status"] = "ERROR"
    finally:
        table = callback.finish()
    failed = [t for t in trials if t.status == "ERROR"]
    logger.info("%d trials finished, %d failed", len(trials) - len(failed), len(failed))
    return TuneOutcome(parent_run_id=run_id, trials=trials, table=table)


def _new_tuner(plan: TuningPlan, trainable: Any, callbacks: list[Any], folder: JobFolder) -> Any:
    from ray import tune

    from unitrain.tune.schedulers import build_scheduler
    from unitrain.tune.searchers import build_search_alg

    config = plan.config
    searcher, param_space = build_search_alg(plan.space, plan.hyperparameter, config)
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=config.metric,
            mode=config.mode,
            # max_concurrent_trials is applied by the search algorithm (searchers)
            search_alg=searcher,
            scheduler=build_scheduler(config),
            # A grid runs every point num_samples / grid times: num_samples is the total.
            num_samples=plan.total_trials // plan.grid_size,
            time_budget_s=config.time_budget_s,
            reuse_actors=True,
            trial_name_creator=lambda trial: trial.trial_id,
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(
            name=folder.tune_path.name,
            storage_path=str(folder.path),
            # Only the JSON logger (Result reads it); CSV and TensorBoard files cost time.
            callbacks=callbacks,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=config.max_failures, fail_fast=False),
        ),
    )


def _id_of(result: Any) -> str:
    """Ray's trial ID; a trial that never reported has it only as its folder's name."""
    trial_id = (result.metrics or {}).get("trial_id")
    return str(trial_id) if trial_id else Path(result.path).name


def _outcome(result: Any, setup: TrialSetup, callback: Any, metric: str) -> TrialOutcome:
    """Join Ray's view of a trial with the trial's own result file."""
    trial_id = _id_of(result)
    own = TrialResult.load(setup.folder(trial_id))
    # What reached Ray (including what a plugin reported to Ray itself), under
    # what the trial recorded at its end.
    metrics = {
        **callback.reported(trial_id),
        **finite_metrics(result.metrics or {}),
        **(own.metrics if own else {}),
    }
    error = _why_failed(result.error, own)
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


def _why_failed(ray_error: Any, own: TrialResult | None) -> str:
    """The clearest account of a failed trial: its own, a worker's death, or Ray's."""
    if not ray_error:
        return ""
    if own is not None and own.status == "FAILED" and own.error:
        return own.error  # the plugin's exception, a timeout, a missing metric
    return worker_death(ray_error) or f"{type(ray_error).__name__}: {ray_error}"


def _plugin_metrics(metrics: dict[str, float]) -> set[str]:
    from unitrain.tune.callback import RAY_BOOKKEEPING

    return set(metrics) - RAY_BOOKKEEPING
