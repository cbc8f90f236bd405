"""Telling a search algorithm about trials it did not run (``tune_config.extend``).

Optuna's searcher takes an evaluated point as it is (``add_evaluated_point``),
and so does unitrain's Bayesian optimisation; Ray's HyperOpt searcher does not,
so :class:`WarmHyperOptSearch` adds it as a finished trial of HyperOpt's own
history. Random search and grids draw without looking at results, so they
are given nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.search.hyperopt import HyperOptSearch

if TYPE_CHECKING:
    from unitrain.tune.study import EarlierTrial

__all__ = ["WarmHyperOptSearch", "add_evaluated"]

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
        import hyperopt as hpo

        if error or pruned:
            return  # HyperOpt learns nothing from a trial without a loss
        vals = dict(parameters)
        self._convert_categories_to_indices(vals)  # a choice is stored as its index
        trials = self._hpopt_trials
        (tid,) = trials.new_trial_ids(1)
        misc = {
            "tid": tid,
            "cmd": ("domain_attachment", "FMinIter_Domain"),
            "workdir": None,
            "idxs": {name: [tid] for name in vals},
            "vals": {name: [drawn] for name, drawn in vals.items()},
        }
        result = {"loss": self.metric_op * value, "status": hpo.STATUS_OK}
        (doc,) = trials.new_trial_docs([tid], [None], [result], [misc])
        doc["state"] = hpo.JOB_STATE_DONE
        trials.insert_trial_docs([doc])
        trials.refresh()


def add_evaluated(searcher: Any, earlier: Sequence[EarlierTrial], metric: str) -> None:
    """Give ``searcher`` each earlier trial's configuration and result."""
    for trial in earlier:
        value = trial.objective(metric)
        if value is None:
            continue
        try:
            searcher.add_evaluated_point(dict(trial.config), value)
        except (ValueError, TypeError, KeyError) as error:
            # One stored value the library will not take costs that trial, not the search.
            log.warning("earlier trial %s not given to the search: %s", trial.key, error)
