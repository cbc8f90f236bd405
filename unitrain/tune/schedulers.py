"""Trial schedulers: one table, one row per scheduler, each imported only when a job uses it.

A row names Ray Tune's class, the defaults unitrain gives it
(``time_attr="training_iteration"``: one unit per reported result), and the
options it cannot run without. Job validation takes its list of names from
:data:`SCHEDULERS`; a wrong option is an error listing the class's options.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from ray.tune.error import TuneError

from unitrain.errors import JobValidationError
from unitrain.job.params import TuneConfig
from unitrain.job.search_space import Distribution, parse_entry
from unitrain.tune.ray_space import to_ray
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
    #: turns the job's options into the class's (e.g. search-space entries into Ray's)
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    module: str = "ray.tune.schedulers"
    #: takes the job's objectives (all of them: several metrics)
    objectives: bool = False


def _mutations(options: dict[str, Any]) -> dict[str, Any]:
    """PBT's ``hyperparam_mutations``: a list of values, or an entry of the job's own search
    space (``{"type": "loguniform", "min": ..., "max": ..., "base": 10}``), per name."""
    if "hyperparam_mutations" not in options:
        return options
    mutations = options["hyperparam_mutations"]
    if not isinstance(mutations, dict) or not all(
        isinstance(v, dict | list) and v for v in mutations.values()
    ):
        raise JobValidationError(
            "tune_config.scheduler.options.hyperparam_mutations: must map each "
            "hyperparameter to a list of values or a search-space entry, got "
            f"{str(mutations)[:200]}"
        )
    converted = {
        name: to_ray(_entry(name, value, "hyperparam_mutations"))
        if isinstance(value, dict)
        else value
        for name, value in mutations.items()
    }
    return {**options, "hyperparam_mutations": converted}


def _bounds(options: dict[str, Any]) -> dict[str, Any]:
    """PB2's ``hyperparam_bounds``: ``[low, high]``, or a ``uniform`` (``randint``) entry."""
    if "hyperparam_bounds" not in options:
        return options
    bounds = options["hyperparam_bounds"]
    if not isinstance(bounds, dict) or not bounds:
        raise JobValidationError(
            "tune_config.scheduler.options.hyperparam_bounds: must map each hyperparameter to "
            f"[low, high] or a uniform entry, got {str(bounds)[:200]}"
        )
    converted = {}
    for name, value in bounds.items():
        if isinstance(value, dict):
            entry = _entry(name, value, "hyperparam_bounds")
            if entry.type_name not in ("uniform", "randint") or entry.bounds is None:
                raise JobValidationError(
                    f"tune_config.scheduler.options.hyperparam_bounds.{name}: pb2 searches "
                    f"a linear range; use a uniform or randint entry, or [low, high], "
                    f"not {entry.type_name}"
                )
            value = list(entry.bounds)
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            and value[0] < value[1]
        ):
            raise JobValidationError(
                f"tune_config.scheduler.options.hyperparam_bounds.{name}: must be [low, high] "
                f"with low < high, or a uniform entry, got {str(value)[:200]}"
            )
        converted[name] = value
    return {**options, "hyperparam_bounds": converted}


def _entry(name: str, value: dict[str, Any], option: str) -> Distribution:
    try:
        return parse_entry({"name": name, **value})
    except ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise JobValidationError(
            f"tune_config.scheduler.options.{option}.{name}: {problems}"
        ) from None


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
            hint='(e.g. {"learning_rate": [0.001, 0.01, 0.1]}, or a search-space entry '
            'such as {"learning_rate": {"type": "loguniform", "min": 0.0001, "max": 0.1, '
            '"base": 10}})',
            convert=_mutations,
        ),
        Scheduler(
            "pb2",
            "PB2",
            _PER_REPORT,
            requires_one_of=("hyperparam_bounds",),
            hint='(e.g. {"learning_rate": [0.0001, 0.1]})',
            convert=_bounds,
            module="ray.tune.schedulers.pb2",  # Ray imports it apart: it needs scikit-learn
        ),
        Scheduler(
            "moasha",
            "MOASHA",
            _PER_REPORT,
            module="unitrain.tune.moasha",
            objectives=True,
        ),
    )
}


def build_scheduler(config: TuneConfig) -> Any:
    """The scheduler named by ``tune_config.scheduler``, with its ``options``."""
    row = SCHEDULERS[config.scheduler.name]
    options = dict(config.scheduler.options)
    if row.requires_one_of and not set(row.requires_one_of) & set(options):
        raise JobValidationError(
            f"tune_config.scheduler.options: {row.name} needs '{row.requires_one_of[0]}' "
            f"{row.hint}".rstrip()
        )
    if row.convert is not None:
        options = row.convert(options)
    if row.objectives:
        options["objectives"] = [(o.metric, o.mode) for o in config.objectives]
    try:
        scheduler_class = getattr(importlib.import_module(row.module), row.class_name)
        return scheduler_class(**{**row.defaults, **options})
    except (TypeError, ValueError, AssertionError, TuneError) as error:
        options.pop("objectives", None)
        # Ray checks some options with assert, whose message may be empty.
        reason = str(error) or f"an option is out of range ({type(error).__name__})"
        raise JobValidationError(
            f"tune_config.scheduler.options: {row.name} rejected {sorted(options)}: {reason}; "
            f"its options are {accepted_options(row.module, row.class_name)}"
        ) from None
