"""Ray Tune's ``OptunaSearch`` with ``tune_config.constraints``: Optuna's samplers learn which
trials were feasible.

Optuna's samplers (5.0 on) read the constraint values a trial carries (at most
0: kept, ``Trial.set_constraint``); this searcher sets them from the trial's
final result just before the trial is told to Optuna. With several objectives
Ray's searcher already takes a list of metrics and modes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from unitrain._compat import optuna_trial_of
from unitrain.job.params import Constraint

__all__ = ["ConstrainedOptunaSearch", "signed_values"]


class ConstrainedOptunaSearch(OptunaSearch):
    """``OptunaSearch`` whose trials carry the values of the job's constraints."""

    def __init__(self, *args: Any, constraints: Sequence[Constraint] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._constraints = list(constraints)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if self._constraints and result is not None:
            trial = optuna_trial_of(self, trial_id)
            if trial is not None:
                values = signed_values(self._constraints, result)
                for constraint, value in zip(self._constraints, values, strict=True):
                    trial.set_constraint(constraint.describe(), value)
        super().on_trial_complete(trial_id, result=result, error=error)


def signed_values(constraints: Sequence[Constraint], metrics: dict[str, Any]) -> list[float]:
    """Each constraint as Optuna reads one: at most 0 when kept, by how much it is broken."""
    values = []
    for constraint in constraints:
        value = metrics.get(constraint.metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            values.append(1.0)  # no value: broken
        elif constraint.max is not None:
            values.append(float(value) - constraint.max)
        else:
            assert constraint.min is not None
            values.append(constraint.min - float(value))
    return values
