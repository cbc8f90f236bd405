"""One axis of a parallel-coordinates plot: where a value sits on it, and its labels.

Each hyperparameter keeps its own scale, as Optuna draws it: numbers on their
range (on a log scale for the log-scaled types), with values at the ticks;
choices by their place among the options, labelled with their names; a trial
without the hyperparameter (a conditional one that did not apply) at the
foot, labelled ``n/a``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unitrain.job.search_space import Distribution, Range

__all__ = ["ABSENT", "Axis"]

#: where a trial without the value is drawn
ABSENT = -0.08
TICKS = 5


@dataclass(frozen=True)
class Axis:
    """A column of the plot: numbers from ``low`` to ``high`` (``log``: on a log scale),
    or ``categories`` in order."""

    name: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, name: str, values: Sequence[Any], entry: Distribution | None = None) -> Axis:
        """The axis for ``values``, on the scale of their search-space ``entry``."""
        present = [v for v in values if v is not None]
        numbers = [_number(v) for v in present]
        options = getattr(entry, "options", None)
        if not options and present and all(n is not None for n in numbers):
            found = [n for n in numbers if n is not None]
            log = isinstance(entry, Range) and entry.LOG and min(found) > 0
            return cls(name, min(found), max(found), log=log)
        labels = tuple(dict.fromkeys(_label(v) for v in options or sorted(present, key=repr)))
        extra = sorted({_label(v) for v in present} - set(labels))
        return cls(name, categories=labels + tuple(extra))

    def position(self, value: Any) -> float:
        """Where ``value`` is drawn, from 0 (bottom) to 1 (top)."""
        if value is None:
            return ABSENT
        if self.categories:
            label = _label(value)
            index = self.categories.index(label) if label in self.categories else 0
            return index / max(len(self.categories) - 1, 1) if len(self.categories) > 1 else 0.5
        number = _number(value)
        if number is None:
            return ABSENT
        low, high, number = (self._scale(x) for x in (self.low, self.high, number))
        return (number - low) / (high - low) if high > low else 0.5

    def ticks(self) -> list[tuple[float, str]]:
        """(position, label) of the axis's tick marks."""
        if self.categories:
            return [(self.position(c), c) for c in self.categories]
        if self.high <= self.low:
            return [(0.5, _shown(self.low))]
        low, high = self._scale(self.low), self._scale(self.high)
        steps = [low + (high - low) * i / (TICKS - 1) for i in range(TICKS)]
        values = [10**s if self.log else s for s in steps]
        return [((s - low) / (high - low), _shown(v)) for s, v in zip(steps, values, strict=True)]

    def _scale(self, value: float) -> float:
        return math.log10(value) if self.log else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _label(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _shown(value: float) -> str:
    return f"{value:.3g}"
