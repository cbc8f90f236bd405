"""When a search has done enough: a target reached, no progress for a while, compute spent.

``tune_config.stop`` adds these to ``num_samples`` and ``time_budget_s``:

- ``target``: stop once a trial ends with the metric at or beyond it;
- ``patience``: stop once that many trials in a row ended without beating the best;
- ``cpu_hours`` / ``gpu_hours``: stop once the trials have used that much
  compute, counted as each trial's resources times how long it ran.

:class:`SearchBudget` keeps the account from the tuning callback's trial
events (on Ray Tune's loop, so no locking), and :class:`BudgetStopper` hands
its verdict to Ray Tune, which then stops the running trials and starts no
more. The reason and the compute used go into the job's summary.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ray.tune import Stopper

from unitrain.job.objective import Objective

__all__ = ["BudgetStopper", "SearchBudget"]


@dataclass
class SearchBudget:
    """The search's account: its best so far, its patience, the compute its trials used."""

    metric: str
    mode: str
    cpus_per_trial: float
    gpus_per_trial: float
    target: float | None = None
    patience: int | None = None
    cpu_hours: float | None = None
    gpu_hours: float | None = None
    clock: Callable[[], float] = time.monotonic
    best: float | None = None
    without_progress: int = 0
    #: why the search should stop ('' while it should go on)
    reason: str = ""
    _ended_s: float = 0.0
    _running: dict[str, float] = field(default_factory=dict)

    def trial_started(self, trial_id: str) -> None:
        self._running.setdefault(trial_id, self.clock())

    def trial_ended(self, trial_id: str, value: float | None) -> None:
        started = self._running.pop(trial_id, None)
        if started is not None:
            self._ended_s += self.clock() - started
        if value is not None:
            if self.best is None or self._better(value, self.best):
                self.best, self.without_progress = value, 0
            else:
                self.without_progress += 1
            if self.target is not None and not self.reason and not self._better(self.target, value):
                self.reason = f"{self.metric} reached the target {self.target:g} ({value:g})"
        if self.patience is not None and not self.reason and self.without_progress >= self.patience:
            self.reason = (
                f"no better {self.metric} in the last {self.without_progress} trials "
                f"(patience {self.patience})"
            )

    def _better(self, value: float, than: float) -> bool:
        return Objective(self.metric, self.mode).better(value, than)  # type: ignore[arg-type]

    def used(self) -> dict[str, float]:
        """CPU-hours and GPU-hours used so far (running trials included)."""
        now = self.clock()
        seconds = self._ended_s + sum(now - started for started in self._running.values())
        return {
            "cpu_hours": seconds * self.cpus_per_trial / 3600,
            "gpu_hours": seconds * self.gpus_per_trial / 3600,
        }

    def exhausted(self) -> bool:
        if self.reason:
            return True
        used = self.used()
        for kind, limit in (("cpu_hours", self.cpu_hours), ("gpu_hours", self.gpu_hours)):
            if limit is not None and used[kind] >= limit:
                self.reason = f"the compute budget was spent ({used[kind]:.3g} of {limit:g} {kind})"
                return True
        return False


#: the live accounts, by key: Ray Tune copies and pickles its run config (and
#: the stopper in it), and every copy must read the account the callback keeps
_BUDGETS: dict[str, SearchBudget] = {}


class BudgetStopper(Stopper):
    """Ray Tune's view of a :class:`SearchBudget`."""

    def __init__(self, budget: SearchBudget) -> None:
        self.key = uuid.uuid4().hex
        _BUDGETS[self.key] = budget

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # trials are stopped all together, by stop_all

    def stop_all(self) -> bool:
        budget = _BUDGETS.get(self.key)
        return budget is not None and budget.exhausted()

    def release(self) -> None:
        _BUDGETS.pop(self.key, None)
