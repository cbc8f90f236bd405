"""What a trial hands back to the driver, and what the driver makes of it.

A trial writes a :class:`TrialResult` into its own folder (``trial.json``)
when it starts and again when it ends: its model folder, the hyperparameters
it ran with, its final metrics, its node and times. The driver reads it back
and joins it with what Ray Tune knows (status, error, intermediate results)
and with the MLflow run it recorded for the trial into a
:class:`TrialOutcome`. Nothing travels as string keys inside Ray's metrics
dict, and a trial whose process died still leaves its start behind.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from unitrain.ui.trial_table import TrialTable

__all__ = ["TrialOutcome", "TrialResult", "TuneOutcome", "outcome_of"]

TrialStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class TrialResult:
    """A trial's own account of itself."""

    trial_id: str
    status: TrialStatus
    #: the folder holding the trial's model ('' when it saved none)
    model_dir: str = ""
    #: every hyperparameter the trial ran with (plugin defaults included)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    #: the Ray node it ran on
    node: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0

    FILE = "trial.json"

    def save(self, folder: str | Path) -> None:
        """Write ``trial.json`` atomically: a reader never sees half a file."""
        path = Path(folder) / self.FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{self.FILE}.{os.getpid()}")
        temporary.write_text(json.dumps(asdict(self), default=str))
        os.replace(temporary, path)

    @classmethod
    def load(cls, folder: str | Path) -> TrialResult | None:
        path = Path(folder) / cls.FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)

    def ended(self, status: TrialStatus, **changes: Any) -> TrialResult:
        return replace(self, status=status, **changes)


@dataclass(frozen=True)
class TrialOutcome:
    """A trial as the driver sees it once the search is over."""

    trial_id: str
    #: Ray Tune's verdict: TERMINATED (ran to its end or was stopped early) or ERROR
    status: str
    config: dict[str, Any]
    metrics: dict[str, float]
    trial_logdir: str
    model_dir: str
    mlflow_run_id: str
    error: str = ""
    #: when Ray received the trial's last result (seconds since the epoch)
    finished_at: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: how the trial itself says it ended (KILLED: stopped early), '' if it never said
    ended: str = ""

    @property
    def has_model(self) -> bool:
        return self.status == "TERMINATED" and bool(self.model_dir)

    @property
    def key(self) -> str:
        """How the trial is named in the job's table (its trial ID)."""
        return self.trial_id

    @property
    def why_no_model(self) -> str:
        """Why this trial registers no model ('' when it does)."""
        if self.has_model:
            return ""
        if self.status == "ERROR":
            return f"it failed: {self.error}"
        if self.ended == "KILLED":
            return "the scheduler stopped it early, before it saved a model"
        return "it saved no model"

    def objective(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class TuneOutcome:
    """Everything the search produced: the job's MLflow run, the trials, the final table."""

    parent_run_id: str
    trials: list[TrialOutcome]
    table: TrialTable
    #: trial ID -> model ID of the models registered while the search ran
    registered: dict[str, int] = field(default_factory=dict)
    #: why the search ended (every trial ran, a stopping rule, the time budget)
    stopped: str = ""
    #: what the trials used: cpu_hours and gpu_hours
    compute: dict[str, float] = field(default_factory=dict)


def outcome_of(
    *,
    trial_id: str,
    own: TrialResult | None,
    ray_metrics: dict[str, Any],
    ray_error: Any,
    reported: dict[str, float],
    metric: str,
    config: dict[str, Any],
    logdir: str,
    run_id: str = "",
) -> TrialOutcome:
    """Join Ray's view of a trial with the trial's own result file."""
    from unitrain.metrics import finite_metrics
    from unitrain.tune.callback import RAY_BOOKKEEPING

    # What reached Ray (including what a plugin reported to Ray itself), under
    # what the trial recorded at its end.
    merged = {**reported, **finite_metrics(ray_metrics), **(own.metrics if own else {})}
    metrics = {k: v for k, v in merged.items() if k not in RAY_BOOKKEEPING}
    error = _why_failed(ray_error, own)
    if not error and own is not None and own.status == "FINISHED" and metric not in metrics:
        error = (
            f"trial {trial_id} reported no {metric!r} (tune_config.metric); it reported "
            f"{sorted(metrics) or 'nothing'}: return it, report it, or log it"
        )
    ended = own.status if own else ""
    if not error and ended == "RUNNING":
        # Ray ended it without an error before it said it finished: a scheduler
        # stopped it (its process may not have written KILLED yet).
        ended = "KILLED"
    return TrialOutcome(
        trial_id=trial_id,
        status="ERROR" if error else "TERMINATED",
        config=dict(config),
        metrics=metrics,
        trial_logdir=logdir,
        model_dir=own.model_dir if own else "",
        mlflow_run_id=run_id,
        error=error[:2000],
        finished_at=float(ray_metrics.get("timestamp") or 0.0),
        hyperparameters=own.hyperparameters if own else dict(config),
        ended=ended,
    )


def _why_failed(ray_error: Any, own: TrialResult | None) -> str:
    """The clearest account of a failed trial: its own, a worker's death, or Ray's."""
    from unitrain.runtime.ray_cluster import worker_death

    if not ray_error:
        return ""
    if own is not None and own.status == "FAILED" and own.error:
        return own.error  # the plugin's exception, a timeout, a missing metric
    return worker_death(ray_error) or f"{type(ray_error).__name__}: {ray_error}"
