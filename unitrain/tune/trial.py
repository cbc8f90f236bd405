"""The function every Ray Tune trial runs: the plugin, through :func:`run_plugin`.

Each trial validates its configuration against the plugin's schema (defaults
filled in), runs the plugin with ``run.report`` wired to Ray Tune's
``tune.report`` and its records going into the trial's folder (the search's
driver carries them to the trial's MLflow run: a trial never waits on the
store), writes its :class:`~unitrain.tune.results.TrialResult` there, and
reports its final metrics once more so the searcher and scheduler see the
optimised metric.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitrain.job.plan import TuningPlan
from unitrain.job.records import Checkpoint, Dataset
from unitrain.plugin_loader import load_plugin
from unitrain.plugin_runner import PluginCall, run_plugin
from unitrain.run_sinks import FolderSink
from unitrain.runtime.worker_env import load_worker_secrets
from unitrain.stores.catalog import DatasetCatalog
from unitrain.tune.results import TrialResult

__all__ = ["TrialSetup", "make_trainable"]


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job shares; picklable."""

    plan: TuningPlan
    dataset: Dataset
    trials_root: str
    #: the model every trial continues from, downloaded once by the driver
    checkpoint: Checkpoint | None = None

    def folder(self, trial_id: str) -> Path:
        return Path(self.trials_root) / trial_id


def make_trainable(setup: TrialSetup) -> Callable[[dict[str, Any]], None]:
    """The function trainable for this job's trials."""

    def unitrain_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

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
        for stale in (output, folder / "record"):  # a restarted trial starts clean
            shutil.rmtree(stale, ignore_errors=True)
        output.mkdir(parents=True)
        dataset = setup.dataset
        if not Path(dataset.path).exists():  # prepared on another node: prepare it here
            dataset = DatasetCatalog().prepare(plan.dataset)
        started = TrialResult(
            trial_id,
            "RUNNING",
            hyperparameters=hyperparameter,
            node=ray.get_runtime_context().get_node_id(),
            started_at=time.time(),
        )
        started.save(folder)
        call = PluginCall(
            plan=plan,
            dataset=dataset,
            hyperparameter=hyperparameter,
            output=output,
            sink=FolderSink(folder / "record"),
            checkpoint=setup.checkpoint,
            metric=metric,
            required_metric=metric,
            trial_id=trial_id,
            reporter=tune.report,
        )
        try:
            with _Watchdog(plan.config.trial_timeout_s, started, folder):
                result = run_plugin(call)
        except BaseException as error:
            stopped = isinstance(error, SystemExit | KeyboardInterrupt)
            saved = output.is_dir() and any(output.iterdir())
            started.ended(
                "KILLED" if stopped else "FAILED",
                model_dir=str(output) if saved else "",
                error="" if stopped else str(error),
                ended_at=time.time(),
            ).save(folder)
            raise
        started.ended(
            "FINISHED", model_dir=result.model_dir, metrics=result.metrics, ended_at=time.time()
        ).save(folder)
        if metric in result.metrics:
            # The searcher and the scheduler learn the trial's final value from
            # its last report. Without the metric (the plugin reported it to Ray
            # itself), Ray's last result already carries it.
            tune.report(dict(result.metrics))

    return unitrain_trial


class _Watchdog:
    """Ends a trial that runs longer than ``timeout_s`` (None: never)."""

    def __init__(self, timeout_s: float | None, started: Any, folder: Path) -> None:
        self.timeout_s = timeout_s
        self.started = started
        self.folder = folder
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
        self.started.ended("FAILED", error=message, ended_at=time.time()).save(self.folder)
        # A thread cannot be stopped: the trial's process goes, and Ray Tune
        # records the trial as failed (and retries it under max_failures).
        os._exit(3)
