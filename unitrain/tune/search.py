"""A search: the Ray Tune run of a tuning job's trials, from the job's own process.

The search runs in the process of the job's flow (Ray Tune's driver reserves
no core; the trials run on the cluster), and it lives in the job's folder, not
the flow run's: a job run again after a crash or an interrupt restores it
(``Tuner.restore``), so trials that finished keep their results and the
interrupted ones run again. Each trial is recorded in MLflow, and its model
published, as it ends, while the next ones run (``unitrain.tune.recorder``).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unitrain._compat import install_search_patches, set_tuner_callbacks, set_tuner_stopper
from unitrain.errors import UnitrainError
from unitrain.job.plan import TuningPlan
from unitrain.job.records import Dataset
from unitrain.reporting.progress import JobProgress
from unitrain.runtime.worker_env import is_secret
from unitrain.stores.job_state import JobFolder
from unitrain.stores.registry import ModelRegistry
from unitrain.tune.callback import TrialsLoggingCallback
from unitrain.tune.recorder import TrialRecorder
from unitrain.tune.results import TrialOutcome, TrialResult, TuneOutcome, outcome_of
from unitrain.tune.schedulers import build_scheduler
from unitrain.tune.searchers import build_search_alg
from unitrain.tune.stopping import BudgetStopper, SearchBudget
from unitrain.tune.trial import TrialSetup, make_trainable
from unitrain.tune.trial_logs import TrialLogForwarder

__all__ = ["run_search"]


def run_search(
    plan: TuningPlan,
    dataset: Dataset,
    progress: JobProgress,
    *,
    run_id: str,
    resume: bool,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster, under the job's run ``run_id``."""
    import ray
    from ray import tune

    # Trials read their secrets from the worker secrets file, never from Ray's runtime env.
    install_search_patches(lambda name: is_secret(name, ""))
    config = plan.config
    folder = JobFolder(plan.job)
    checkpoint = None
    if plan.checkpoint_id is not None:  # downloaded once, for every trial (shared storage)
        checkpoint = ModelRegistry().resolve_checkpoint(
            plan.checkpoint_id, folder.path / "checkpoint"
        )
    setup = TrialSetup(plan, dataset, str(folder.trials_path), checkpoint, str(folder.tune_path))
    recorder = TrialRecorder(plan, folder.trials_path, job_run=run_id, resumed=resume)
    budget = SearchBudget(
        metric=config.objective.metric,
        mode=config.objective.mode,
        cpus_per_trial=plan.num_cpus,
        gpus_per_trial=plan.num_gpus,
        **config.stop.model_dump(),
    )
    stopper = BudgetStopper(budget)

    def ended(trial: Any, errored: bool) -> None:  # on Ray Tune's loop: queue, never wait
        reported = callback.reported(trial.trial_id)
        outcome = _outcome_of_trial(trial, setup, reported, config.metrics, errored)
        budget.trial_ended(trial.trial_id, outcome.objective(config.objective.metric))
        recorder.ended(outcome)

    callback = TrialsLoggingCallback(
        job=plan.job,
        metric=config.objective.metric,
        mode=config.objective.mode,
        metrics=config.metrics,
        hyperparameters=plan.searched_names,
        config_of=plan.trial_config,
        total_trials=plan.total_trials,
        progress=progress.step("trials"),
        on_start=lambda trial: budget.trial_started(trial.trial_id),
        on_result=lambda trial: recorder.progressed(trial.trial_id),
        on_end=ended,
    )
    callback.add_earlier(plan.earlier)
    callbacks = [callback, TrialLogForwarder(setup.trials_root)]
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
                # failed trials run again from their latest checkpoint
                resume_errored=True,
            )
            set_tuner_callbacks(tuner, callbacks)
            set_tuner_stopper(tuner, stopper)
        else:
            shutil.rmtree(folder.tune_path, ignore_errors=True)
            tuner = _new_tuner(plan, trainable, callbacks, stopper, folder)
        logger.info(
            "tuning %r: %d trials on %s", plan.job, plan.total_trials, ray.cluster_resources()
        )
        try:
            results = tuner.fit()
        except Exception as error:
            raise UnitrainError(f"the Ray Tune search failed: {error}") from None
        trials = [
            _outcome_of_result(results[index], setup, callback, config.metrics)
            for index in range(len(results))
        ]
        for trial in trials:  # trials a resumed search did not run again, and the driver's verdicts
            recorder.ended(trial)
            if trial.status == "ERROR":
                callback.trials.setdefault(trial.trial_id, {})["status"] = "ERROR"
    finally:
        table = callback.finish()
        recorder.finish()
        stopper.release()
    trials = [
        dataclasses.replace(t, mlflow_run_id=recorder.run_ids.get(t.trial_id, "")) for t in trials
    ]
    failed = [t for t in trials if t.status == "ERROR"]
    logger.info("%d trials finished, %d failed", len(trials) - len(failed), len(failed))
    stopped = _why_it_stopped(plan, budget, len(trials))
    compute = budget.used()
    logger.info(
        "the search stopped: %s; it used %.3g CPU-hours, %.3g GPU-hours",
        stopped,
        compute["cpu_hours"],
        compute["gpu_hours"],
    )
    return TuneOutcome(
        parent_run_id=run_id,
        trials=trials,
        table=table,
        registered=dict(recorder.registered),
        stopped=stopped,
        compute=compute,
    )


def _why_it_stopped(plan: TuningPlan, budget: Any, ran: int) -> str:
    if budget.reason:
        return budget.reason
    if ran < plan.total_trials and plan.config.time_budget_s is not None:
        return (
            f"the time budget ran out ({plan.config.time_budget_s:g} s, tune_config.time_budget_s)"
        )
    return f"all {ran} trials ran"


def _new_tuner(
    plan: TuningPlan, trainable: Any, callbacks: list[Any], stopper: Any, folder: JobFolder
) -> Any:
    from ray import tune

    config = plan.config
    searcher, param_space = build_search_alg(
        plan.space, plan.hyperparameter, config, earlier=plan.earlier
    )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            # (several objectives: the searcher has them all; Ray Tune ranks by one)
            metric=config.objective.metric,
            mode=config.objective.mode,
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
            # No JSON, CSV or TensorBoard result files: the trials' folders and
            # MLflow hold the results (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS).
            callbacks=callbacks,
            stop=stopper,
            verbose=0,
            # (each trial prunes its own checkpoints: see unitrain.tune.trial)
            failure_config=tune.FailureConfig(max_failures=config.max_failures, fail_fast=False),
        ),
    )


def _id_of(result: Any) -> str:
    """Ray's trial ID; a trial that never reported has it only as its folder's name."""
    trial_id = (result.metrics or {}).get("trial_id")
    return str(trial_id) if trial_id else Path(result.path).name


def _outcome_of_result(
    result: Any, setup: TrialSetup, callback: Any, metric: Sequence[str]
) -> TrialOutcome:
    trial_id = _id_of(result)
    return outcome_of(
        trial_id=trial_id,
        own=TrialResult.load(setup.folder(trial_id)),
        ray_metrics=dict(result.metrics or {}),
        ray_error=result.error,
        reported=callback.reported(trial_id),
        metric=metric,
        config=setup.plan.trial_config(dict(result.config or {})),
        logdir=str(result.path),
        checkpoint=_path_of(result.checkpoint),
    )


def _outcome_of_trial(
    trial: Any, setup: TrialSetup, reported: dict[str, float], metric: Sequence[str], errored: bool
) -> TrialOutcome:
    return outcome_of(
        trial_id=trial.trial_id,
        own=TrialResult.load(setup.folder(trial.trial_id)),
        ray_metrics=dict(trial.last_result or {}),
        ray_error="the trial failed" if errored else None,
        reported=reported,
        metric=metric,
        config=setup.plan.trial_config(dict(trial.config or {})),
        logdir=str(trial.path),
        checkpoint=_path_of(trial.checkpoint),
    )


def _path_of(checkpoint: Any) -> str:
    """Where a trial's latest checkpoint is ('' when it has none)."""
    return str(checkpoint.path) if checkpoint is not None else ""
