"""Which reported values are metrics: finite real numbers, whatever library made them."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["as_metric", "finite_metrics"]


def as_metric(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (numpy and torch scalars too), else None."""
    if isinstance(value, bool):
        return None
    if not isinstance(value, numbers.Real) and hasattr(value, "item"):
        try:
            value = value.item()
        except (TypeError, ValueError):  # arrays with more than one element
            return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def finite_metrics(values: Mapping[str, Any], *, skip: Iterable[str] = ()) -> dict[str, float]:
    """The entries of ``values`` that are metrics, as floats."""
    skipped = set(skip)
    result = {}
    for key, value in values.items():
        number = as_metric(value)
        if number is not None and key not in skipped:
            result[str(key)] = number
    return result
