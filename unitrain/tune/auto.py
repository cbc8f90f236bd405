"""``search_alg: "auto"``: the search algorithm the measurements say is best for this job.

The rule follows ``bench/hpo_quality.py`` (the README's search-quality table):
at the budgets real searches have (tens of trials), Ax's Gaussian process
finds the best configurations; it cannot express a grid or an unbounded
(normal) entry, and the cost of fitting it grows with every trial, so larger
searches go to Optuna's TPE, which stays cheap per trial. A grid runs only
with random search; normal entries go to HyperOpt, which samples them.
Several objectives or constraints go to Optuna, the searcher that learns them
(random search when the space has a normal entry, which Optuna cannot sample),
and so do conditional entries (to HyperOpt with a normal entry too).
"""

from __future__ import annotations

from collections.abc import Sequence

from unitrain.job.params import TuneConfig
from unitrain.job.search_space import Distribution

__all__ = ["AUTO", "GP_TRIALS", "choose"]

AUTO = "auto"
#: up to this many trials a GP is worth its cost per trial (above, TPE)
GP_TRIALS = 100


def choose(entries: Sequence[Distribution], config: TuneConfig, trials: int) -> tuple[str, str]:
    """The search algorithm for this space and budget, and why (for ``unitrain validate``)."""
    traits = set().union(*(entry.traits for entry in entries)) if entries else set()
    if "grid" in traits:
        return "basicvariantgenerator", "the space has a grid_search entry, which only it runs"
    if config.several or config.constraints:
        what = "several objectives" if config.several else "constraints"
        if "normal" in traits:
            return "basicvariantgenerator", (
                f"{what} and a normal (randn) entry: only random search takes both"
            )
        return "optunasearch", f"{what}: Optuna's TPE learns them"
    if "normal" in traits:
        return "hyperoptsearch", "the space has a normal (randn) entry, which HyperOpt samples"
    if "conditional" in traits:
        return "optunasearch", "the space has conditional entries (when), which Optuna samples"
    if trials > GP_TRIALS:
        return (
            "optunasearch",
            f"{trials} trials: above {GP_TRIALS} a GP costs more per trial than it saves; "
            "Optuna's TPE stays cheap",
        )
    return (
        "axsearch",
        f"{trials} trials over a bounded space: Ax's Gaussian process found the best "
        "configurations at such budgets (README, search quality)",
    )
