"""The function every Ray Tune trial runs: the plugin, through :func:`run_plugin`.

Each trial validates its configuration against the plugin's schema (defaults
filled in), opens an MLflow child run of the job's run, runs the plugin with
``run.report`` wired to Ray Tune's ``tune.report``, writes its
:class:`~unitrain.tune.results.TrialResult` into its folder, and reports its
final metrics once more so the searcher and scheduler see the optimised metric.

A trial that finished before its job was interrupted is not run again when the
job resumes: its result file says so, and it reports what it reported then.
With ``tune_config.trial_timeout_s`` a watchdog ends a trial that runs too
long: it records the timeout, then ends the trial's process (a hung plugin
cannot be stopped any other way), which Ray Tune sees as a failed trial.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitrain.job.plan import TuningPlan
from unitrain.plugin_api import Dataset
from unitrain.stores.registry import TAG

__all__ = ["TrialSetup", "make_trainable"]


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job shares; picklable."""

    plan: TuningPlan
    dataset: Dataset
    trials_root: str
    parent_run_id: str
    tracking_uri: str

    def folder(self, trial_id: str) -> Path:
        return Path(self.trials_root) / trial_id


def make_trainable(setup: TrialSetup) -> Callable[[dict[str, Any]], None]:
    """The function trainable for this job's trials."""

    def unitrain_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        from unitrain.plugin_loader import load_plugin
        from unitrain.plugin_runner import PluginCall, run_plugin
        from unitrain.runtime.worker_env import load_worker_secrets
        from unitrain.stores.catalog import DatasetCatalog
        from unitrain.stores.registry import ModelRegistry
        from unitrain.tune.results import TrialResult

        load_worker_secrets()
        plan = setup.plan
        metric = plan.config.metric
        trial_id = tune.get_context().get_trial_id()
        folder = setup.folder(trial_id)
        output = folder / "model"
        hyperparameter = load_plugin(plan.plugin).validate_hyperparameter(
            {**plan.hyperparameter, **config}
        )
        done = TrialResult.load(folder)
        if (
            done is not None
            and done.status == "FINISHED"
            and done.hyperparameters == hyperparameter
        ):
            # Finished before the job was interrupted: keep that result and its model.
            tune.report(dict(done.metrics))
            return
        if output.exists():  # a restarted trial starts clean
            shutil.rmtree(output)
        output.mkdir(parents=True)
        dataset = setup.dataset
        if not Path(dataset.path).exists():  # prepared on another node: prepare it here
            dataset = DatasetCatalog().prepare(plan.dataset)
        registry = ModelRegistry(tracking_uri=setup.tracking_uri)
        run_id = registry.start_run(
            plan,
            run_name=f"{plan.job}-{trial_id}",
            parent_run_id=setup.parent_run_id,
            tags={TAG.TRIAL: trial_id, TAG.NODE: ray.get_runtime_context().get_node_id()},
        )
        started = TrialResult(trial_id, "RUNNING", run_id, hyperparameters=hyperparameter)
        started.save(folder)
        watchdog = _Watchdog(plan.config.trial_timeout_s, started, folder, registry)
        call = PluginCall(
            plan=plan,
            dataset=dataset,
            hyperparameter=hyperparameter,
            run_id=run_id,
            output=output,
            metric=metric,
            required_metric=metric,
            trial_id=trial_id,
            reporter=tune.report,
        )
        try:
            with watchdog:
                result = run_plugin(call, registry)
        except BaseException as error:
            stopped = isinstance(error, SystemExit | KeyboardInterrupt)
            saved = output.is_dir() and any(output.iterdir())
            started.ended(
                "KILLED" if stopped else "FAILED",
                model_dir=str(output) if saved else "",
                error="" if stopped else str(error),
            ).save(folder)
            raise
        started.ended("FINISHED", model_dir=result.model_dir, metrics=result.metrics).save(folder)
        if metric in result.metrics:
            # The searcher and the scheduler learn the trial's final value from
            # its last report. Without the metric (the plugin reported it to Ray
            # itself), Ray's last result already carries it.
            tune.report(dict(result.metrics))

    return unitrain_trial


class _Watchdog:
    """Ends a trial that runs longer than ``timeout_s`` (None: never)."""

    def __init__(self, timeout_s: float | None, started: Any, folder: Path, registry: Any) -> None:
        self.timeout_s = timeout_s
        self.started = started
        self.folder = folder
        self.registry = registry
        self._done = threading.Event()

    def __enter__(self) -> _Watchdog:
        if self.timeout_s is not None:
            threading.Thread(
                target=self._watch, args=(self.timeout_s,), name="trial-timeout", daemon=True
            ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self, timeout_s: float) -> None:
        if self._done.wait(timeout_s):
            return
        message = f"timed out after {timeout_s:g} s (tune_config.trial_timeout_s)"
        self.started.ended("FAILED", error=message).save(self.folder)
        try:
            self.registry.end_run(self.started.mlflow_run_id, "FAILED")
        finally:
            # A thread cannot be stopped: the trial's process goes, and Ray Tune
            # records the trial as failed (and retries it under max_failures).
            os._exit(3)
