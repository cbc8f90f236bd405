"""Weighted job progress, shown as one Prefect progress artifact per job.

Each step of the DAG owns a share of the bar (SPEC section 6). Steps run one
after another, so a step's position on the bar is the sum of the weights
before it plus its own fraction done: no shared state between the Ray workers
that run the steps is needed. Updates are throttled: a plugin may call
``set_progress`` thousands of times per second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from unitrain.job.objective import Mode

__all__ = ["WEIGHTS", "JobProgress", "StepProgress"]

WEIGHTS: dict[str, dict[str, float]] = {
    Mode.TRAINING: {"dataset": 20.0, "train": 75.0, "model_upload": 5.0},
    Mode.TUNING: {"dataset": 20.0, "trials": 75.0, "model_upload": 5.0},
}
_MIN_INTERVAL_S = 0.5
_MIN_STEP_PERCENT = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobProgress:
    """Where a job's bar lives; picklable, so each task gets a copy.

    ``artifact_id`` is ``None`` outside a Prefect flow: progress is then only logged.
    """

    mode: str
    artifact_id: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in WEIGHTS:
            raise ValueError(f"mode must be one of {sorted(WEIGHTS)}, got {self.mode!r}")

    @property
    def weights(self) -> dict[str, float]:
        return WEIGHTS[self.mode]

    def offset(self, category: str) -> float:
        """Percent of the job done before ``category`` starts."""
        total = 0.0
        for name, weight in self.weights.items():
            if name == category:
                return total
            total += weight
        raise KeyError(
            f"{category!r} is not a step of a {self.mode} job; steps: {list(self.weights)}"
        )

    def overall(self, category: str, fraction: float) -> float:
        fraction = min(max(fraction, 0.0), 1.0)
        return self.offset(category) + self.weights[category] * fraction

    def step(self, category: str) -> StepProgress:
        self.offset(category)  # fail early on an unknown category
        return StepProgress(self, category)

    def finish(self) -> None:
        """Set the bar to exactly 100."""
        _publish(self.artifact_id, 100.0)


@dataclass
class StepProgress:
    """Progress of one step; also kept as the step's own artifact in its task run."""

    job: JobProgress
    category: str
    _last_sent: float = field(default=-1.0, repr=False)
    _last_time: float = field(default=0.0, repr=False)
    _step_artifact: str | None = field(default=None, repr=False)
    fraction: float = 0.0

    def update(self, current: float, total: float) -> None:
        if total <= 0:
            return
        self.fraction = min(max(current / total, 0.0), 1.0)
        percent = self.fraction * 100.0
        now = time.monotonic()
        done = self.fraction >= 1.0
        if not done and (
            percent - self._last_sent < _MIN_STEP_PERCENT or now - self._last_time < _MIN_INTERVAL_S
        ):
            return
        if done and self._last_sent >= 100.0:
            return
        self._last_sent, self._last_time = percent, now
        _publish(self.job.artifact_id, self.job.overall(self.category, self.fraction))
        if self.job.artifact_id is not None:
            self._step_artifact = _publish_step(self._step_artifact, self.category, percent)

    def complete(self) -> None:
        self.update(1, 1)


def _publish(artifact_id: str | None, percent: float) -> None:
    if artifact_id is None:
        log.debug("progress %.1f%%", percent)
        return
    from prefect.artifacts import update_progress_artifact

    try:
        update_progress_artifact(artifact_id, round(percent, 2))  # type: ignore[arg-type]
    except Exception as error:  # progress must never fail a job
        log.warning("could not update the progress artifact: %s", error)


def _publish_step(artifact_id: str | None, category: str, percent: float) -> str | None:
    """Create (in the current task run) or update the step's own progress artifact."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    try:
        if artifact_id is None:
            return str(create_progress_artifact(round(percent, 2), description=f"step {category}"))
        update_progress_artifact(artifact_id, round(percent, 2))  # type: ignore[arg-type]
    except Exception as error:
        log.warning("could not update the step progress artifact: %s", error)
    return artifact_id
