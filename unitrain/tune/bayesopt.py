"""Gaussian-process Bayesian optimisation as a Ray Tune searcher, on bayesian-optimization 3.x.

Ray's own ``BayesOptSearch`` targets the 1.x API (``UtilityFunction``) and
fails to build on 3.x; this searcher uses 3.x's ``suggest()``/``register()``,
which also take integer and categorical parameters. Log-scaled entries are
searched on the log of their value, so the GP sees the scale the user chose.

Its defaults are the measured best at 25 trials (``bench/hpo_quality.py``):
five random points first, then upper confidence bound with ``kappa=1.0``
(the library's 2.576 explores too long for such budgets: 1.61 against 0.49
on Branin). It proposes one trial at a time: bayesian-optimization learns
nothing from a trial still running, and none of its ways of pretending it did
(a constant liar, the GP's own prediction) held up with two trials at once
(60 % to 150 % worse on Branin), so with ``max_concurrent_trials`` above 1
the next trial waits for the running one. ``axsearch`` and ``optunasearch``
run several at once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from ray.tune.search import Searcher

from unitrain.job.objective import Objective
from unitrain.job.search_space import Distribution

__all__ = ["BayesOptSearcher"]


class BayesOptSearcher(Searcher):
    """Suggests configurations from a GP fitted to completed trials."""

    def __init__(
        self,
        entries: Sequence[Distribution],
        *,
        metric: str,
        mode: str,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        seed: int | None = None,
        acquisition: str = "ucb",
        kappa: float = 1.0,
        xi: float = 0.01,
        init_points: int = 5,
    ) -> None:
        import numpy as np
        from bayes_opt import BayesianOptimization
        from bayes_opt import acquisition as acquisitions

        super().__init__(metric=metric, mode=mode)
        functions = {
            "ucb": lambda: acquisitions.UpperConfidenceBound(kappa=kappa, random_state=seed),
            "ei": lambda: acquisitions.ExpectedImprovement(xi=xi, random_state=seed),
            "poi": lambda: acquisitions.ProbabilityOfImprovement(xi=xi, random_state=seed),
        }
        if acquisition not in functions:
            raise ValueError(
                f"unknown acquisition {acquisition!r}; supported: {', '.join(functions)}"
            )
        # bayesian-optimization maximises: a minimised metric is given negated
        self._objective = Objective(metric, mode)  # type: ignore[arg-type]
        self._entries = {e.name: e for e in entries}
        with warnings.catch_warnings():
            # Integer and categorical bounds are flagged experimental in 3.x; they are
            # what this searcher is for, and its tests cover them.
            warnings.filterwarnings("ignore", message="Non-float parameters are experimental")
            self._optimizer = BayesianOptimization(
                f=None,
                pbounds={name: e.internal_bounds() for name, e in self._entries.items()},
                acquisition_function=functions[acquisition](),
                random_state=seed,
                verbose=0,
                allow_duplicate_points=True,
            )
        self._pending_points = list(points_to_evaluate or [])
        self._live: dict[str, dict[str, Any]] = {}
        self._random = np.random.default_rng(seed)
        self._init_points = init_points

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._live:
            return None  # one trial at a time (see the module's docstring): ask again later
        if self._pending_points:
            config = dict(self._pending_points.pop(0))
            raw = {n: e.to_internal(config[n]) for n, e in self._entries.items() if n in config}
            if len(raw) < len(self._entries):  # fill the rest from the optimiser
                raw = {**self._optimizer.suggest(), **raw}
                config = {n: e.from_internal(raw[n]) for n, e in self._entries.items()} | config
        elif len(self._optimizer.space) < self._init_points:  # (earlier trials count)
            raw = self._uniform()
            config = {n: e.from_internal(raw[n]) for n, e in self._entries.items()}
        else:
            raw = self._optimizer.suggest()
            config = {n: e.from_internal(raw[n]) for n, e in self._entries.items()}
        self._live[trial_id] = raw
        return config

    def _uniform(self) -> dict[str, float]:
        """A point drawn uniformly from the box (the searcher's first points)."""
        box = {n: e.internal_bounds() for n, e in self._entries.items()}
        return {n: float(self._random.uniform(b[0], b[1])) for n, b in box.items()}

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Fit the GP to a point evaluated elsewhere (a trial of an extended study)."""
        if error or pruned or not math.isfinite(value):
            return
        raw = {n: e.to_internal(parameters[n]) for n, e in self._entries.items()}
        self._optimizer.register(params=raw, target=self._objective.sign * value)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        raw = self._live.pop(trial_id, None)
        if raw is None or error or not result or self.metric not in result:
            return
        value = float(result[self.metric])
        if math.isfinite(value):
            self._optimizer.register(params=raw, target=self._objective.sign * value)
