"""Running a plugin: one path for a training job and for every trial.

:func:`run_plugin` calls the plugin's ``train()`` (or, for a trial, its
``tune()`` when it has one), turns what it returned into metrics the same way
in both modes (a dict is kept, a number ``x`` becomes ``{metric: x}``), and
sends the final metrics with the run's last batch, to the run's sink (an
MLflow run in training mode, the trial's folder in a search). A plugin's own
exception may not unpickle in another process, so it comes back as a
:class:`PluginError` carrying its text.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitrain.errors import UnitrainError
from unitrain.job.plan import JobPlan
from unitrain.metrics import as_metric, finite_metrics
from unitrain.mlflow_model import add_generic_wrapper
from unitrain.plugin_api import Checkpoint, Dataset, Reporter, TrainRun
from unitrain.plugin_loader import load_plugin
from unitrain.reporting.logs import run_logger
from unitrain.reporting.plugin_log import PluginLog, PluginLogHandler
from unitrain.reporting.progress import StepProgress
from unitrain.run_sinks import RunSink

__all__ = ["PluginCall", "PluginError", "PluginResult", "normalise_result", "run_plugin"]

#: the metric a number returned by a training job is recorded as
TRAINING_OBJECTIVE = "objective"


class PluginError(UnitrainError):
    """The plugin raised, or returned something unitrain cannot read."""


@dataclass(frozen=True)
class PluginCall:
    """One call of a plugin: for a training job, or for one trial of a search."""

    plan: JobPlan
    dataset: Dataset
    #: the hyperparameters handed to the plugin (validated, defaults filled in)
    hyperparameter: dict[str, Any]
    #: the folder ``run.checkpoint_output`` starts as
    output: Path
    #: where the run's records go (an MLflow run, a trial's folder)
    sink: RunSink | None = field(default=None, compare=False)
    #: the model to continue from, downloaded already
    checkpoint: Checkpoint | None = None
    #: the name a returned number is recorded as
    metric: str = TRAINING_OBJECTIVE
    #: which metric must be present and finite at the end ('' = none required)
    required_metric: str = ""
    trial_id: str | None = None
    progress: StepProgress | None = None
    reporter: Reporter | None = field(default=None, compare=False)
    #: where a trial's log lines go for the driver to log (None: this process's run logger)
    lines: PluginLog | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PluginResult:
    """What a finished call produced."""

    #: the folder holding the saved model ('' when the plugin saved nothing)
    model_dir: str
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]


def normalise_result(returned: Any, metric: str) -> dict[str, Any]:
    """``{"accuracy": 0.9}`` stays; ``0.9`` becomes ``{metric: 0.9}``; ``None`` is ``{}``."""
    if returned is None:
        return {}
    if isinstance(returned, dict):
        return {str(k): v for k, v in returned.items()}
    if isinstance(returned, bool):
        raise TypeError(f"the plugin returned {returned!r}; return a number or a dict of metrics")
    if isinstance(returned, int | float) or hasattr(returned, "item"):  # numpy / torch scalars
        number = as_metric(returned)
        return {metric: number if number is not None else float("nan")}
    raise TypeError(
        f"the plugin returned a {type(returned).__name__}; return a number or a dict of metrics"
    )


def run_plugin(call: PluginCall) -> PluginResult:
    """Run the plugin once, its records going to ``call.sink``.

    Raises :class:`PluginError` when the plugin raises (or returns something
    unreadable, or a non-finite required metric); an interrupt (Ctrl-C, or a
    scheduler stopping a trial with ``SystemExit``) passes through as it is.
    """
    plan = call.plan
    run = TrainRun(
        sink=call.sink,
        progress=call.progress,
        trial_id=call.trial_id,
        checkpoint_output=str(call.output),
        reporter=call.reporter,
        lines=call.lines,
    )
    plugin_loggers = None
    try:
        # Sent with the first batch of metrics: a short run writes once.
        run.log_params(call.hyperparameter)
        plugin = load_plugin(plan.plugin)
        plugin_loggers = _PluginLoggers(plugin, run)
        if call.checkpoint is not None:
            run.log_message(f"resuming from model {call.checkpoint.model_id}")
        hyperparameter = dict(call.hyperparameter)
        if call.trial_id is not None and plugin.tune is not None:
            returned = plugin.tune(hyperparameter, run, call.dataset, call.checkpoint)
        else:
            returned = plugin.train(run, call.dataset, hyperparameter, call.checkpoint)
        final = {**run.last_metrics, **normalise_result(returned, call.metric)}
        metrics = finite_metrics(final)
        wanted = call.required_metric
        if wanted and wanted in final and wanted not in metrics:
            raise PluginError(f"{wanted!r} is {final[wanted]!r}, not a finite number")
        plugin_loggers.detach()
        run.close(final_metrics=metrics)
    except BaseException as error:
        if plugin_loggers is not None:
            plugin_loggers.detach()
        _close_quietly(run)
        if isinstance(error, Exception) and not isinstance(error, PluginError):
            if call.trial_id is None:  # a failed trial is summed up by the driver instead
                run_logger().error("plugin %r failed:\n%s", plan.plugin, traceback.format_exc())
            raise PluginError(
                f"plugin {plan.plugin!r} failed: {type(error).__name__}: {error}"
            ) from None
        raise
    location = Path(run.checkpoint_output or call.output)  # the plugin may have chosen another
    saved = location.is_dir() and any(location.iterdir())
    if saved:
        add_generic_wrapper(location, plan.plugin)
    return PluginResult(
        model_dir=str(location) if saved else "",
        metrics=metrics,
        hyperparameters=dict(call.hyperparameter),
    )


class _PluginLoggers:
    """While the plugin runs, what its own loggers say at INFO and above goes where
    ``run.log_message`` goes (with the trial's ID)."""

    def __init__(self, plugin: Any, run: TrainRun) -> None:
        module = getattr(plugin.module, "__name__", "") or ""
        # a bundled plugin's own package; a third party's whole distribution package
        name = module if module.startswith("unitrain.") else module.split(".")[0]
        self.logger = logging.getLogger(name) if name else None
        self.handler = PluginLogHandler(lambda level, text: run.log_message(text, level))
        self.level, self.propagate = logging.NOTSET, True
        if self.logger is not None:
            self.level, self.propagate = self.logger.level, self.logger.propagate
            if self.logger.getEffectiveLevel() > logging.INFO:
                self.logger.setLevel(logging.INFO)
            self.logger.addHandler(self.handler)
            self.logger.propagate = False  # said once, where run.log_message says it

    def detach(self) -> None:
        if self.logger is not None:
            self.logger.removeHandler(self.handler)
            self.logger.setLevel(self.level)
            self.logger.propagate = self.propagate
            self.logger = None


def _close_quietly(run: TrainRun) -> None:
    """Send what the run buffered; an error here must not hide the plugin's own."""
    try:
        run.close()
    except Exception:  # noqa: BLE001 (the store may be the reason the plugin failed)
        pass
