"""What plugin code sees: the run object, the checkpoint and the dataset it receives.

A plugin's ``train(run, dataset, hyperparameter, checkpoint)`` (and optional
``tune(hyperparameter, run, dataset, checkpoint)``) gets a :class:`TrainRun`,
the one way plugin code reports what it does: metrics become MLflow metrics
(``<category>/<key>``, with ``epoch`` as the step), intermediate results given
to :meth:`TrainRun.report` also reach Ray Tune's schedulers in tuning mode,
visualizations become image artifacts, messages go to the Prefect run log, and
progress moves the job's bar. In tuning mode every record carries the trial's ID.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unitrain.job.records import Checkpoint, Dataset
from unitrain.job.study import as_params
from unitrain.metrics import finite_metrics
from unitrain.mlflow_model import save_flavor
from unitrain.reporting.logs import run_logger
from unitrain.reporting.plugin_log import PluginLog
from unitrain.reporting.progress import StepProgress
from unitrain.reporting.trial_table import TrialTable
from unitrain.run_sinks import NoSink, RunSink

__all__ = ["Checkpoint", "Dataset", "Reporter", "TrainRun"]

#: where intermediate results go besides MLflow (in tuning mode: Ray Tune's report)
Reporter = Callable[[dict[str, Any]], None]


class TrainRun:
    """What a plugin's ``train()`` and ``tune()`` receive as ``run``.

    Args:
        sink: where records go (an MLflow run, a trial's folder; default: kept
            in memory only, in :attr:`records`).
        progress: the step whose bar ``set_progress`` moves, if any.
        trial_id: the Ray Tune trial ID in tuning mode.
        checkpoint_output: the folder where the plugin should save its model.
        trials_sink: callable receiving ``log_trials`` tables (tuning).
        reporter: where :meth:`report` sends intermediate results besides the
            sink (a Ray Tune trial passes Ray's ``tune.report``).
        lines: where log lines are written as they come: a trial's folder,
            which the search's driver reads and logs; a training job's, which
            ``unitrain run`` shows (a training job also logs them with the
            Prefect run's logger of its process).
    """

    def __init__(
        self,
        *,
        sink: RunSink | None = None,
        progress: StepProgress | None = None,
        trial_id: str | None = None,
        checkpoint_output: str | None = None,
        trials_sink: Any = None,
        reporter: Reporter | None = None,
        lines: PluginLog | None = None,
    ) -> None:
        self.trial_id = trial_id
        self._lines = lines
        self.checkpoint_output = checkpoint_output
        self.records: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self.last_metrics: dict[str, float] = {}
        self.reports = 0
        self._sink: RunSink = sink or NoSink()
        self._progress = progress
        self._trials_sink = trials_sink
        self._reporter = reporter
        self._step: dict[str, int] = {}
        self._reported: dict[str, float] = {}  # last value report() sent, per key

    @property
    def is_tune(self) -> bool:
        return self.trial_id is not None

    def _with_trial(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.trial_id is not None:
            record["trial_id"] = self.trial_id
        return record

    def log_metric(self, category: str, key: str, value: float, **metrics: Any) -> None:
        """Record one value, e.g. ``run.log_metric('training', 'loss', 0.5, epoch=10)``."""
        value = float(value)
        record = self._with_trial(
            {"category": category, "key": key, "value": value, "metrics": dict(metrics)}
        )
        self.records.append(record)
        self.last_metrics[key] = value
        name = f"{category}/{key}"
        step = metrics.get("epoch", metrics.get("step"))
        if step is None:
            step = self._step.get(name, -1) + 1
        self._step[name] = int(step)
        if math.isfinite(value):
            self._sink.metric(name, value, int(time.time() * 1000), int(step))

    def report(self, metrics: dict[str, Any], **step: Any) -> None:
        """An intermediate result, e.g. ``run.report({"accuracy": 0.9}, epoch=3)``.

        Its numbers are recorded as metrics (MLflow, step = ``epoch`` or
        ``step``, else the number of reports so far) and become the run's latest
        values; in tuning mode the result also goes to Ray Tune, whose
        schedulers may stop the trial here. A plugin may call
        ``ray.tune.report`` itself instead: Ray then sees the result, and
        unitrain picks its values up from Ray when the trial ends.
        """
        values = finite_metrics(metrics)
        index = int(step.get("epoch", step.get("step", self.reports)))
        self.reports += 1
        self.last_metrics.update(values)
        self.records.append(self._with_trial({"report": dict(values), "metrics": dict(step)}))
        now = int(time.time() * 1000)
        for key, value in values.items():
            self._sink.metric(key, value, now, index)
            self._step[key] = index
            self._reported[key] = value
        if self._reporter is not None:
            self._reporter({**metrics, **step})

    def log_params(self, values: dict[str, Any]) -> None:
        """Hyperparameters as parameters of the run, sent with the next batch of metrics."""
        self._sink.params(as_params(values))

    def flush(self) -> None:
        """Send what is buffered."""
        self._sink.flush()

    def log_visualization(
        self, category: str, group: str, index: int, image: Any, **meta: Any
    ) -> None:
        """Save an image (array, PIL image, matplotlib figure, PNG bytes or a path)."""
        path = f"visualizations/{category}/{group}/{int(index):05d}.png"
        self.records.append(
            self._with_trial(
                {
                    "category": category,
                    "group": group,
                    "index": index,
                    "artifact": path,
                    "meta": dict(meta),
                }
            )
        )
        if not isinstance(self._sink, NoSink):
            self._sink.artifact(path, _to_png(image))

    def log_model(self, flavor: Any, model: Any, **kwargs: Any) -> None:
        """Save the model with an MLflow flavor too, e.g. ``run.log_model(mlflow.pytorch, net,
        signature=..., input_example=...)``: the registered version then loads with that
        flavor (``mlflow.pyfunc.load_model``, ``mlflow models serve``).

        The files go into ``run.checkpoint_output`` beside the plugin's own; keyword
        arguments go to the flavor's ``save_model``. Without it, unitrain wraps the
        folder in a generic ``python_function`` model (see ``unitrain.mlflow_model``).
        """
        if not self.checkpoint_output:
            raise ValueError("this run has no checkpoint_output to save the model into")
        save_flavor(Path(self.checkpoint_output), flavor, model, **kwargs)

    def log_message(self, text: str, level: str = "INFO") -> None:
        """A line for the job's log: the flow run's log in Prefect, the job's ``run.log``,
        and with ``-v`` the terminal; in tuning mode it carries the trial's ID."""
        line = f"[trial {self.trial_id}] {text}" if self.trial_id else str(text)
        self.messages.append(line)
        if self._lines is not None:  # a trial's driver logs it (a training job's view shows it)
            self._lines.write(level, line)
        if not self.is_tune:
            run_logger().log(logging.getLevelNamesMapping().get(level, logging.INFO), line)

    def set_progress(self, current: float, total: float, category: str = "train") -> None:
        """Report how far training is; in tuning mode a trial does not move the job's bar."""
        if self._progress is not None and not self.is_tune and category == "train":
            self._progress.update(current, total)

    def log_trials(
        self,
        data: dict[str, Any] | None = None,
        *,
        trials: dict[str, dict[str, Any]] | None = None,
        base: list[str] | None = None,
        hyperparameters: list[str] | None = None,
        metrics: list[str] | None = None,
        best_trial: str = "",
    ) -> dict[str, Any]:
        """Publish a trial table; returns the payload that was logged."""
        table = (
            TrialTable.from_payload(data)
            if data is not None
            else TrialTable(
                trials=trials or {},
                base=base or ["status"],
                hyperparameters=hyperparameters or [],
                metrics=metrics or [],
                best_trial=best_trial,
            )
        )
        payload = table.payload()
        if self._trials_sink is not None:
            self._trials_sink(table)
        self._sink.artifact("trials.json", json.dumps(payload).encode())
        return payload

    def close(self, final_metrics: dict[str, float] | None = None) -> None:
        """Send what is buffered (with the run's final metrics), and write the messages."""
        now = int(time.time() * 1000)
        for key, value in (final_metrics or {}).items():
            # A final value already reported at the last step is not sent twice.
            if self._reported.get(key) != value:
                self._sink.metric(key, float(value), now, self._step.get(key, 0))
        self._sink.flush()
        if self._lines is not None:
            self._lines.close()
        if self.messages:
            self._sink.artifact("messages.log", ("\n".join(self.messages) + "\n").encode())


def _to_png(image: Any) -> bytes:
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, str | Path):
        return Path(image).read_bytes()
    if hasattr(image, "savefig"):  # a matplotlib figure
        buffer = io.BytesIO()
        image.savefig(buffer, format="png")
        return buffer.getvalue()
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        array = np.asarray(image)
        if array.dtype != np.uint8:
            scale = 255.0 if array.size and float(np.nanmax(array)) <= 1.0 else 1.0
            array = np.clip(array * scale, 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
