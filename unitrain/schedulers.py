"""Trial schedulers by name, imported only when a job uses them."""

from __future__ import annotations

from typing import Any

from unitrain.errors import JobValidationError
from unitrain.params import TuneConfig

__all__ = ["build_scheduler"]


def _fifo(options: dict[str, Any], config: TuneConfig) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler(**options)


def _hyperband(options: dict[str, Any], config: TuneConfig) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(**{"time_attr": "training_iteration", **options})


def _asha(options: dict[str, Any], config: TuneConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(**{"time_attr": "training_iteration", **options})


def _median(options: dict[str, Any], config: TuneConfig) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(**{"time_attr": "training_iteration", **options})


def _pbt(options: dict[str, Any], config: TuneConfig) -> Any:
    from ray.tune.schedulers import PopulationBasedTraining

    if "hyperparam_mutations" not in options and "custom_explore_fn" not in options:
        raise JobValidationError(
            "tune_config.scheduler.options: pbt needs 'hyperparam_mutations' "
            '(e.g. {"learning_rate": [0.001, 0.01, 0.1]})'
        )
    return PopulationBasedTraining(**{"time_attr": "training_iteration", **options})


_CLASSES = {
    "fifo": "FIFOScheduler",
    "hyperband": "HyperBandScheduler",
    "asha": "ASHAScheduler",
    "median": "MedianStoppingRule",
    "pbt": "PopulationBasedTraining",
}
_BUILDERS = {"fifo": _fifo, "hyperband": _hyperband, "asha": _asha, "median": _median, "pbt": _pbt}


def build_scheduler(config: TuneConfig) -> Any:
    """The scheduler named by ``tune_config.scheduler``, with its ``options``."""
    name, options = config.scheduler.name, dict(config.scheduler.options)
    try:
        return _BUILDERS[name](options, config)
    except JobValidationError:
        raise
    except (TypeError, ValueError) as error:
        from unitrain.search_algorithms import accepted_options

        accepted = accepted_options("ray.tune.schedulers", _CLASSES[name])
        raise JobValidationError(
            f"tune_config.scheduler.options: {name} rejected {sorted(options)}: {error}; "
            f"its options are {accepted}"
        ) from None
