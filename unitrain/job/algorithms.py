"""The names a job may give ``tune_config.search_alg`` and ``tune_config.scheduler``.

The job is checked against these names before anything of Ray is imported;
``unitrain.tune.searchers`` and ``unitrain.tune.schedulers`` build each one
(their tables have exactly these rows, which a test holds them to).
"""

from __future__ import annotations

__all__ = ["SCHEDULERS", "SEARCH_ALGORITHMS"]

SEARCH_ALGORITHMS: tuple[str, ...] = (
    "basicvariantgenerator",
    "hyperoptsearch",
    "bayesoptsearch",
    "axsearch",
    "optunasearch",
)

SCHEDULERS: tuple[str, ...] = ("fifo", "hyperband", "asha", "median", "pbt", "pb2", "moasha")
