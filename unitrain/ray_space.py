"""The generic search space as Ray Tune's own, in one place.

Ray's integer domains exclude their upper bound, except quantised ones with
``q > 1`` (rounding to a multiple of ``q`` reaches it), and its HyperOpt and
Optuna converters follow the same rule. unitrain's integer types all include
``max``, so: without quantisation (``q == 1``) the domain is ``randint`` /
``lograndint`` up to ``max + 1``; with ``q > 1`` it is ``qrandint`` /
``qlograndint`` between the multiples of ``q`` inside ``[min, max]``. Float
quantised types use those multiples as bounds too, so a rounded sample never
leaves the range.

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
            if entry.effective_q == 1:
                return tune.randint(low, high + 1)
            return tune.qrandint(low, high, entry.effective_q)
        case ss.LogRandInt():
            return tune.lograndint(entry.min, entry.max + 1)  # Ray excludes it
        case ss.QLogRandInt():
            low, high = entry.bounds
            if entry.effective_q == 1:
                return tune.lograndint(low, high + 1)
            return tune.qlograndint(low, high, entry.effective_q)
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
