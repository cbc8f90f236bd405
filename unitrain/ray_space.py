"""The generic search space as Ray Tune's own, in one place.

Ray's integer samplers draw from ``[lower, upper)``; its quantised ones then
round to a multiple of ``q``, which is why its docs call their upper bound
inclusive "except for q=1". unitrain's integer types all include ``max``, so
every integer type gets ``max + 1`` as Ray's upper bound here. Quantised types
use the multiples of ``q`` inside ``[min, max]`` as their bounds, so a rounded
sample can never leave the range.

``base`` is validated (the job format requires it) but not passed on: a
log-uniform distribution is the same in every base, and Ray deprecates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unitrain import search_space as ss

__all__ = ["to_ray_domain", "to_param_space"]


def to_ray_domain(entry: Any) -> Any:
    """One entry as a Ray Tune domain (or a ``grid_search`` marker)."""
    from ray import tune

    match entry:
        case ss.Uniform():
            return tune.uniform(entry.min, entry.max)
        case ss.QUniform():
            return tune.quniform(*entry.bounds, entry.effective_q)
        case ss.LogUniform():
            return tune.loguniform(entry.min, entry.max)
        case ss.QLogUniform():
            return tune.qloguniform(*entry.bounds, entry.effective_q)
        case ss.QRandN():
            return tune.qrandn(entry.mean, entry.sd, entry.effective_q)
        case ss.RandN():
            return tune.randn(entry.mean, entry.sd)
        case ss.RandInt():
            return tune.randint(entry.min, entry.max + 1)  # Ray excludes the upper bound
        case ss.QRandInt():
            low, high = entry.bounds
            return tune.qrandint(low, high + 1, entry.effective_q)
        case ss.LogRandInt():
            return tune.lograndint(entry.min, entry.max + 1)  # Ray excludes it
        case ss.QLogRandInt():
            low, high = entry.bounds
            return tune.qlograndint(low, high + 1, entry.effective_q)
        case ss.Choice():
            return tune.choice(entry.options)
        case ss.GridSearch():
            return tune.grid_search(entry.options)
    raise TypeError(f"no Ray Tune domain for search-space entry {entry!r}")


def to_param_space(entries: Sequence[Any], fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``param_space`` of a Tuner: searched entries plus fixed values."""
    space: dict[str, Any] = dict(fixed or {})
    for entry in entries:
        space[entry.name] = to_ray_domain(entry)
    return space
