"""Trial schedulers: one table, one row per scheduler, each imported only when a job uses it.

A row names Ray Tune's class, the defaults unitrain gives it
(``time_attr="training_iteration"``: one unit per reported result), and the
options it cannot run without. Job validation takes its list of names from
:data:`SCHEDULERS`; a wrong option is an error listing the class's options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unitrain.errors import JobValidationError
from unitrain.job.params import TuneConfig
from unitrain.tune.searchers import accepted_options

__all__ = ["SCHEDULERS", "Scheduler", "build_scheduler"]

_PER_REPORT = {"time_attr": "training_iteration"}


@dataclass(frozen=True)
class Scheduler:
    """One row of the table."""

    name: str
    class_name: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: option sets of which one must be given, and the hint shown when none is
    requires_one_of: tuple[str, ...] = ()
    hint: str = ""


#: one row per name of ``unitrain.job.algorithms.SCHEDULERS``
SCHEDULERS: dict[str, Scheduler] = {
    row.name: row
    for row in (
        Scheduler("fifo", "FIFOScheduler"),
        Scheduler("hyperband", "HyperBandScheduler", _PER_REPORT),
        Scheduler("asha", "ASHAScheduler", _PER_REPORT),
        Scheduler("median", "MedianStoppingRule", _PER_REPORT),
        Scheduler(
            "pbt",
            "PopulationBasedTraining",
            _PER_REPORT,
            requires_one_of=("hyperparam_mutations", "custom_explore_fn"),
            hint='(e.g. {"learning_rate": [0.001, 0.01, 0.1]})',
        ),
    )
}


def build_scheduler(config: TuneConfig) -> Any:
    """The scheduler named by ``tune_config.scheduler``, with its ``options``."""
    import ray.tune.schedulers

    row = SCHEDULERS[config.scheduler.name]
    options = dict(config.scheduler.options)
    if row.requires_one_of and not set(row.requires_one_of) & set(options):
        raise JobValidationError(
            f"tune_config.scheduler.options: {row.name} needs '{row.requires_one_of[0]}' "
            f"{row.hint}".rstrip()
        )
    try:
        return getattr(ray.tune.schedulers, row.class_name)(**{**row.defaults, **options})
    except (TypeError, ValueError, AssertionError) as error:
        # Ray checks some options with assert, whose message may be empty.
        reason = str(error) or f"an option is out of range ({type(error).__name__})"
        raise JobValidationError(
            f"tune_config.scheduler.options: {row.name} rejected {sorted(options)}: {reason}; "
            f"its options are {accepted_options('ray.tune.schedulers', row.class_name)}"
        ) from None
