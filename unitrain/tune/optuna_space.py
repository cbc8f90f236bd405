"""The search space as Optuna's, define-by-run when entries are conditional.

Ray's ``OptunaSearch`` converts Ray domains into Optuna distributions and
asks for all of them in every trial; a conditional entry must be asked for
only when its condition holds, which Optuna expresses by running: the
:class:`DefineByRun` space asks for each entry in order (each after the
choice it depends on) and skips those whose conditions fail, so the trial
has no such parameter and Optuna's samplers model it only where it existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unitrain.job.conditions import in_order, is_conditional
from unitrain.job.search_space import Distribution
from unitrain.tune.ray_space import to_param_space

__all__ = ["DefineByRun", "optuna_space"]


class DefineByRun:
    """A define-by-run space (picklable: Ray Tune saves the searcher with the search)."""

    def __init__(self, entries: Sequence[Distribution], distributions: dict[str, Any]) -> None:
        self.entries = in_order(entries)
        self.distributions = distributions

    def __call__(self, trial: Any) -> None:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        values: dict[str, Any] = {}
        for entry in self.entries:
            if not entry.holds(values):
                continue
            d = self.distributions[entry.name]
            if isinstance(d, CategoricalDistribution):
                values[entry.name] = trial.suggest_categorical(entry.name, d.choices)
            elif isinstance(d, IntDistribution):
                values[entry.name] = trial.suggest_int(
                    entry.name, d.low, d.high, step=d.step, log=d.log
                )
            else:  # FloatDistribution
                values[entry.name] = trial.suggest_float(
                    entry.name, d.low, d.high, step=d.step, log=d.log
                )


def optuna_space(entries: Sequence[Distribution]) -> Any:
    """What ``OptunaSearch`` takes as its ``space``: Ray's conversion of the entries, or a
    define-by-run space when some are conditional."""
    from ray.tune.search.optuna import OptunaSearch

    converted = OptunaSearch.convert_search_space(to_param_space(entries))
    if not is_conditional(entries):
        return converted
    return DefineByRun(entries, dict(converted))
