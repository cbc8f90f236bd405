"""Gaussian-process Bayesian optimisation as a Ray Tune searcher, on bayesian-optimization 3.x.

Ray's own ``BayesOptSearch`` targets the 1.x API (``UtilityFunction``) and
fails to build on 3.x; this searcher uses 3.x's ``suggest()``/``register()``,
which also take integer and categorical parameters. Log-scaled entries are
searched on the log of their value, so the GP sees the scale the user chose.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from ray.tune.search import Searcher

from unitrain import search_space as ss

__all__ = ["BayesOptSearcher"]


class _Dimension:
    """How one entry maps to a bayes_opt bound and back."""

    def __init__(self, entry: Any) -> None:
        self.entry = entry
        self.log_base = getattr(entry, "base", None)

    def bound(self) -> Any:
        e = self.entry
        if isinstance(e, ss.Choice):
            return (0, len(e.options) - 1, int)  # an index: options may be any JSON value
        low, high = e.bounds if hasattr(e, "bounds") else (e.min, e.max)
        if self.log_base is not None:
            return (math.log(low, self.log_base), math.log(high, self.log_base))
        if isinstance(e, ss.RandInt | ss.QRandInt):
            return (int(low), int(high), int)
        return (float(low), float(high))

    def to_value(self, raw: Any) -> Any:
        e = self.entry
        if isinstance(e, ss.Choice):
            return e.options[int(raw)]
        value = self.log_base ** float(raw) if self.log_base is not None else raw
        q = getattr(e, "effective_q", None)
        if q is not None:
            low, high = e.bounds
            value = min(max(round(value / q) * q, low), high)
        if isinstance(e, ss.RandInt | ss.QRandInt | ss.LogRandInt | ss.QLogRandInt):
            return int(min(max(round(value), e.min), e.max))
        return float(min(max(value, e.min), e.max))

    def to_raw(self, value: Any) -> Any:
        e = self.entry
        if isinstance(e, ss.Choice):
            return e.options.index(value)
        return math.log(value, self.log_base) if self.log_base is not None else value


class BayesOptSearcher(Searcher):
    """Suggests configurations from a GP fitted to completed trials."""

    def __init__(
        self,
        entries: Sequence[Any],
        *,
        metric: str,
        mode: str,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        from bayes_opt import BayesianOptimization

        super().__init__(metric=metric, mode=mode)
        self._dimensions = {e.name: _Dimension(e) for e in entries}
        with warnings.catch_warnings():
            # Integer and categorical bounds are flagged experimental in 3.x; they are
            # what this searcher is for, and its tests cover them.
            warnings.filterwarnings("ignore", message="Non-float parameters are experimental")
            self._optimizer = BayesianOptimization(
                f=None,
                pbounds={name: d.bound() for name, d in self._dimensions.items()},
                random_state=seed,
                verbose=0,
                allow_duplicate_points=True,
                **options,
            )
        self._pending_points = list(points_to_evaluate or [])
        self._live: dict[str, dict[str, Any]] = {}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._pending_points:
            config = dict(self._pending_points.pop(0))
            raw = {n: d.to_raw(config[n]) for n, d in self._dimensions.items() if n in config}
            if len(raw) < len(self._dimensions):  # fill the rest from the optimiser
                suggested = self._optimizer.suggest()
                raw = {**suggested, **raw}
                config = {n: d.to_value(raw[n]) for n, d in self._dimensions.items()} | config
        else:
            raw = self._optimizer.suggest()
            config = {n: d.to_value(raw[n]) for n, d in self._dimensions.items()}
        self._live[trial_id] = raw
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        raw = self._live.pop(trial_id, None)
        if raw is None or error or not result or self.metric not in result:
            return
        value = float(result[self.metric])
        if math.isfinite(value):
            target = value if self.mode == "max" else -value
            self._optimizer.register(params=raw, target=target)
