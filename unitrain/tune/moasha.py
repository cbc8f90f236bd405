"""MOASHA: asynchronous successive halving for several objectives (Schmucker et al., 2021).

ASHA stops a trial at a rung (after ``grace_period`` reports, then
``reduction_factor`` times as many, ...) unless its metric is among the best
``1 / reduction_factor`` of the trials recorded at that rung. With several
objectives there is no one "best": MOASHA ranks the rung's trials by
non-dominated sorting (the Pareto front first, then the front of the rest,
...), breaking ties inside a front by crowding distance (the trials in sparse
regions of the front first, as NSGA-II does), and lets a trial go on if it is
among the first ``ceil(n / reduction_factor)`` of the ``n`` recorded. A trial
that another trial dominates at its rung is thus stopped before any trial of
the rung's front is. The options are ASHA's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from unitrain.job.objective import Objective
from unitrain.job.pareto import non_dominated_sort

__all__ = ["MOASHA", "promoted"]


class MOASHA(FIFOScheduler):
    """ASHA whose rungs promote by non-dominated sorting."""

    def __init__(
        self,
        objectives: Sequence[tuple[str, str]],
        *,
        time_attr: str = "training_iteration",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 4,
        stop_last_trials: bool = True,
    ) -> None:
        if max_t < 1 or grace_period < 1 or grace_period > max_t:
            raise ValueError(
                f"need 1 <= grace_period <= max_t, got grace_period={grace_period}, max_t={max_t}"
            )
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        super().__init__()
        self.objectives = [Objective(metric, mode) for metric, mode in objectives]  # type: ignore[arg-type]
        self.time_attr = time_attr
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self.stop_last_trials = stop_last_trials
        count = int(math.log(max_t / grace_period) / math.log(reduction_factor)) + 1
        #: milestone -> trial ID -> the trial's values there
        self.rungs: dict[float, dict[str, tuple[float, ...]]] = {
            grace_period * reduction_factor**k: {} for k in range(count)
        }
        self.stopped = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # its objectives are its own (Ray Tune passes one metric)

    def _values(self, result: dict[str, Any]) -> tuple[float, ...] | None:
        values = []
        for objective in self.objectives:
            value = result.get(objective.metric)
            if not isinstance(value, int | float) or not math.isfinite(value):
                return None
            values.append(float(value))
        return tuple(values)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        values = self._values(result)
        if values is None or self.time_attr not in result:
            return TrialScheduler.CONTINUE
        now = result[self.time_attr]
        if now >= self.max_t and self.stop_last_trials:
            return TrialScheduler.STOP
        action = self._at_rung(trial.trial_id, now, values)
        self.stopped += action == TrialScheduler.STOP
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        values = self._values(result)
        if values is not None and self.time_attr in result:
            self._at_rung(trial.trial_id, result[self.time_attr], values)

    def _at_rung(self, trial_id: str, now: float, values: tuple[float, ...]) -> str:
        """Record the trial at the highest rung it reached and not yet passed; its verdict."""
        for milestone in sorted(self.rungs, reverse=True):
            recorded = self.rungs[milestone]
            if now < milestone or trial_id in recorded:
                continue
            recorded[trial_id] = values
            if trial_id in promoted(recorded, self.objectives, self.reduction_factor):
                return TrialScheduler.CONTINUE
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"MOASHA: {self.stopped} stopped; rungs " + ", ".join(
            f"{m:g}: {len(r)}" for m, r in sorted(self.rungs.items())
        )


def promoted(
    recorded: dict[str, tuple[float, ...]], objectives: Sequence[Objective], factor: float
) -> set[str]:
    """The trials of a rung that go on: the first ``ceil(n / factor)`` by non-dominated
    sorting, crowding distance first inside a front."""
    ids = list(recorded)
    points = [recorded[i] for i in ids]
    room = max(1, math.ceil(len(ids) / factor))
    order: list[str] = []
    for front in non_dominated_sort(points, objectives):
        distance = _crowding([points[i] for i in front], objectives)
        ranked = sorted(range(len(front)), key=lambda k: -distance[k])
        order += [ids[front[k]] for k in ranked]
        if len(order) >= room:
            break
    return set(order[:room])


def _crowding(points: Sequence[tuple[float, ...]], objectives: Sequence[Objective]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front (boundary points: infinite)."""
    distance = [0.0] * len(points)
    if len(points) <= 2:
        return [math.inf] * len(points)
    for axis, objective in enumerate(objectives):
        order = sorted(range(len(points)), key=lambda i: objective.sign * points[i][axis])
        low, high = points[order[0]][axis], points[order[-1]][axis]
        distance[order[0]] = distance[order[-1]] = math.inf
        span = (high - low) or 1.0
        for before, here, after in zip(order, order[1:], order[2:], strict=False):
            distance[here] += abs(points[after][axis] - points[before][axis]) / span
    return distance
