"""What a trial hands back to the driver, and what the driver makes of it.

A trial writes a :class:`TrialResult` into its own folder (``trial.json``)
when it starts and again when it ends: its MLflow run, its model folder, the
hyperparameters it ran with and its final metrics. The driver reads it back
and joins it with what Ray Tune knows (status, error, intermediate results)
into a :class:`TrialOutcome`. Nothing travels as string keys inside Ray's
metrics dict, and a trial whose process died still leaves its run ID behind.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from unitrain.ui.trial_table import TrialTable

__all__ = ["TrialOutcome", "TrialResult", "TuneOutcome"]

TrialStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class TrialResult:
    """A trial's own account of itself."""

    trial_id: str
    status: TrialStatus
    mlflow_run_id: str
    #: the folder holding the trial's model ('' when it saved none)
    model_dir: str = ""
    #: every hyperparameter the trial ran with (plugin defaults included)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

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
