"""What a job optimises, and which of its two modes it runs in: one object per decision.

:class:`Objective` is the metric and its direction. Every comparison of two
trials (the best trial, the best so far, the patience of a search, the order
of a table) asks it, instead of computing a sign where it is needed.
:class:`Mode` names the two ways a job runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Direction", "Mode", "Objective"]

Direction = Literal["max", "min"]


class Mode(StrEnum):
    """How a job runs: one training run, or a search over hyperparameters."""

    TRAINING = "training"
    TUNING = "tuning"


@dataclass(frozen=True)
class Objective:
    """A metric to maximise or minimise.

    >>> Objective("loss", "min").better(0.1, 0.2)
    True
    >>> Objective("accuracy").best([0.8, 0.9, None])
    0.9
    """

    metric: str
    mode: Direction = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")

    @property
    def sign(self) -> float:
        """``+1`` for ``max``, ``-1`` for ``min``: ``sign * value`` grows as values get better."""
        return 1.0 if self.mode == "max" else -1.0

    def better(self, value: float, than: float) -> bool:
        """Whether ``value`` is strictly better than ``than``."""
        return self.sign * value > self.sign * than

    def at_least_as_good(self, value: float, as_: float) -> bool:
        return not self.better(as_, value)

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best finite value, or None when there is none."""
        finite = [v for v in values if v is not None and math.isfinite(v)]
        return max(finite, key=lambda v: self.sign * v) if finite else None

    def value_of(self, metrics: Mapping[str, Any]) -> float | None:
        """The metric's finite value in ``metrics``, or None."""
        value = metrics.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    def rank(self, value: float | None) -> tuple[bool, float]:
        """A sort key that puts the best value first and missing values last."""
        return (value is None, -self.sign * value if value is not None else 0.0)

    def share(self, value: float, low: float, high: float) -> float:
        """Where ``value`` lies between the worst (0) and the best (1) of ``[low, high]``."""
        if high <= low:
            return 1.0
        fraction = (value - low) / (high - low)
        return fraction if self.mode == "max" else 1.0 - fraction
