"""The trial table: trial ID -> status, hyperparameters and up to 4 metrics.

Built by ``run.log_trials`` and by the tuning callback, published as a Prefect
table artifact (one new version per snapshot under a stable key).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_METRIC_COLUMNS", "TrialTable"]

MAX_METRIC_COLUMNS = 4

log = logging.getLogger(__name__)


@dataclass
class TrialTable:
    trials: dict[str, dict[str, Any]]
    base: list[str] = field(default_factory=lambda: ["status"])
    hyperparameters: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    best_trial: str = ""

    def __post_init__(self) -> None:
        if len(self.metrics) > MAX_METRIC_COLUMNS:
            log.info("trial table: keeping the first %d metric columns", MAX_METRIC_COLUMNS)
            self.metrics = self.metrics[:MAX_METRIC_COLUMNS]

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> TrialTable:
        return cls(
            trials=dict(data.get("trials", {})),
            base=list(data.get("base", ["status"])),
            hyperparameters=list(data.get("hyperparameters", [])),
            metrics=list(data.get("metrics", [])),
            best_trial=str(data.get("best_trial", "")),
        )

    def payload(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "base": self.base,
            "hyperparameters": self.hyperparameters,
            "metrics": self.metrics,
            "best_trial": self.best_trial,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per trial, the best one marked, in trial order."""
        rows = []
        for trial_id, values in self.trials.items():
            row: dict[str, Any] = {"trial_id": trial_id}
            if self.best_trial:
                row["best"] = "★" if trial_id == self.best_trial else ""
            for column in [*self.base, *self.hyperparameters, *self.metrics]:
                value = values.get(column, "")
                row[column] = round(value, 6) if isinstance(value, float) else value
            rows.append(row)
        return rows

    def publish(self, job: str) -> None:
        """Create the next version of the job's trial-table artifact."""
        from prefect.artifacts import create_table_artifact

        description = f"Trials of {job}" + (f"; best: {self.best_trial}" if self.best_trial else "")
        try:
            create_table_artifact(
                self.rows(), key=artifact_key("trials", job), description=description
            )
        except Exception as error:  # the table is a view; never fail a job for it
            log.warning("could not publish the trial table: %s", error)


def artifact_key(prefix: str, job: str) -> str:
    """``<prefix>-<job>``; Prefect keys allow lowercase letters, digits and dashes only.

    A name with other characters gets a short digest, so two jobs never share a key.
    """
    import hashlib

    slug = re.sub(r"[^a-z0-9]+", "-", job.lower()).strip("-") or "job"
    if slug != job:
        slug = f"{slug[:80]}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"
    return f"{prefix}-{slug}"
