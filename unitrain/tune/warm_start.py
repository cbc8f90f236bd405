"""Telling a search algorithm about trials it did not run (``tune_config.extend``).

Optuna's searcher takes an evaluated point as it is (``add_evaluated_point``),
and so does unitrain's Bayesian optimisation; Ray's HyperOpt searcher does not,
so :class:`WarmHyperOptSearch` adds it as a finished trial of HyperOpt's own
history (through ``unitrain._compat``). Random search and grids draw without
looking at results, so they are given nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.search.hyperopt import HyperOptSearch

from unitrain._compat import hyperopt_add_evaluated

__all__ = ["WarmHyperOptSearch"]

log = logging.getLogger(__name__)


class WarmHyperOptSearch(HyperOptSearch):
    """Ray's HyperOpt searcher, plus evaluated points it learns from (TPE's history)."""

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        if error or pruned:
            return  # HyperOpt learns nothing from a trial without a loss
        if not hyperopt_add_evaluated(self, parameters, self.metric_op * value):
            log.warning("HyperOpt is not told of the earlier trial %s", parameters)
