"""The search space as Ray Tune domains: the one converter from unitrain's entries to Ray's.

Ray's HyperOpt and Optuna searchers convert Ray domains into their own, so
this is the only place a distribution meets Ray. Each supported entry type
has its case; anything else is an error naming the entry.

Bounds: unitrain's integer types include ``max``, Ray's ``randint`` and
``lograndint`` exclude their upper bound, so one is added; Ray's quantised
integer domains with ``q > 1`` reach their upper bound by rounding, so they
get it as it is. Quantised floats get the bounds snapped to multiples of
``q``, which keeps a rounded draw inside ``[min, max]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray import tune

from unitrain.job.search_space import Choice, Distribution, GridSearch, QRandN, RandN, Range

__all__ = ["to_param_space", "to_ray"]


def to_ray(entry: Distribution) -> Any:
    """``entry`` as a Ray Tune domain (or a ``grid_search`` marker)."""
    if isinstance(entry, GridSearch):
        return tune.grid_search(entry.options)
    if isinstance(entry, Choice):
        return tune.choice(entry.options)
    if isinstance(entry, QRandN):
        return tune.qrandn(entry.mean, entry.sd, entry.effective_q)
    if isinstance(entry, RandN):
        return tune.randn(entry.mean, entry.sd)
    if isinstance(entry, Range):
        return _range(entry)
    raise TypeError(f"{entry.name!r}: entries of type {entry.type_name} have no Ray Tune domain")


def _range(entry: Range) -> Any:
    low, high = entry.bounds
    q = entry.effective_q
    if entry.INTEGER:
        if q is None or q == 1:
            return (tune.lograndint if entry.LOG else tune.randint)(low, high + 1)
        return (tune.qlograndint if entry.LOG else tune.qrandint)(low, high, int(q))
    if q is None:
        return (tune.loguniform if entry.LOG else tune.uniform)(low, high)
    return (tune.qloguniform if entry.LOG else tune.quniform)(low, high, q)


def to_param_space(
    entries: Sequence[Distribution], fixed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``param_space`` of a Tuner: searched entries as Ray domains, plus fixed values."""
    space: dict[str, Any] = dict(fixed or {})
    for entry in entries:
        space[entry.name] = to_ray(entry)
    return space
