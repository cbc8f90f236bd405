"""The trial table: trial ID -> status, hyperparameters and up to 4 metrics.

Built by ``run.log_trials`` and by the tuning callback, published as a Prefect
table artifact (one new version per snapshot under a stable key). A search of
more than :data:`MAX_ROWS` trials shows the best ones first, then the running
ones, and one closing row that counts the rest by status: a table of a
thousand rows is neither readable nor cheap to send every few seconds. The
whole table stays with the job's MLflow run (``trials.json``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from unitrain.job.objective import Objective

__all__ = ["MAX_METRIC_COLUMNS", "MAX_ROWS", "TrialTable"]

MAX_METRIC_COLUMNS = 4
#: rows of a published table; a bigger search shows its best trials
MAX_ROWS = 50
#: of those, at most this many are running trials
MAX_RUNNING_ROWS = 10

log = logging.getLogger(__name__)


@dataclass
class TrialTable:
    trials: dict[str, dict[str, Any]]
    base: list[str] = field(default_factory=lambda: ["status"])
    hyperparameters: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    best_trial: str = ""
    #: "max" or "min": how the first metric column ranks trials
    mode: str = "max"

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
            mode=str(data.get("mode", "max")),
        )

    def payload(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "base": self.base,
            "hyperparameters": self.hyperparameters,
            "metrics": self.metrics,
            "best_trial": self.best_trial,
            "mode": self.mode,
        }

    def mark(self, *, front: set[str], infeasible: set[str]) -> None:
        """Mark the trials of a Pareto front (``pareto``: yes) and those that broke a
        constraint (``feasible``: no), each a column of its own when any trial has it."""
        for column, trials, value in (("pareto", front, "yes"), ("feasible", infeasible, "no")):
            if not trials:
                continue
            for trial_id in trials:
                if trial_id in self.trials:
                    self.trials[trial_id][column] = value
            if column not in self.base:
                self.base.append(column)

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """One row per trial, the best one marked, in trial order.

        With ``limit`` and more trials than that: the best trials by the first
        metric, then running ones, then a row counting the trials not shown.
        """
        shown = list(self.trials)
        if limit is not None and len(shown) > limit:
            shown = self._worth_showing(limit - 1)
        rows = [self._row(trial_id, self.trials[trial_id]) for trial_id in shown]
        listed = set(shown)
        hidden = [v.get("status", "") for k, v in self.trials.items() if k not in listed]
        if len(shown) < len(self.trials):
            counts = ", ".join(f"{hidden.count(s)} {s.lower()}" for s in sorted(set(hidden)))
            rows.append({"trial_id": f"... {len(hidden)} more", "status": counts})
        return rows

    def _worth_showing(self, room: int) -> list[str]:
        objective = Objective(self.metrics[0] if self.metrics else "", self.mode)  # type: ignore[arg-type]

        def rank(trial_id: str) -> tuple[bool, float]:
            return objective.rank(objective.value_of(self.trials[trial_id]))

        running = [k for k, v in self.trials.items() if v.get("status") == "RUNNING"]
        running = running[: min(MAX_RUNNING_ROWS, room)]
        busy = set(running)
        others = sorted((k for k in self.trials if k not in busy), key=rank)
        best = ([self.best_trial] if self.best_trial in self.trials else []) + [
            k for k in others if k != self.best_trial
        ]
        return best[: room - len(running)] + running

    def _row(self, trial_id: str, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"trial_id": trial_id}
        if self.best_trial:
            row["best"] = "★" if trial_id == self.best_trial else ""
        for column in [*self.base, *self.hyperparameters, *self.metrics]:
            value = values.get(column, "")
            row[column] = round(value, 6) if isinstance(value, float) else value
        return row

    def publish(self, job: str) -> None:
        """Create the next version of the job's trial-table artifact."""
        from prefect.artifacts import create_table_artifact

        description = f"Trials of {job}" + (f"; best: {self.best_trial}" if self.best_trial else "")
        if len(self.trials) > MAX_ROWS:
            description += f" (the best of {len(self.trials)} trials, then the running ones)"
        try:
            create_table_artifact(
                self.rows(limit=MAX_ROWS), key=artifact_key("trials", job), description=description
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
