"""unitrain: train and tune models from one JSON job.

The public API::

    from unitrain import parse_job, plan_job, TrainRun, DatasetCatalog, ModelRegistry

Prefect, Ray and MLflow are imported only where they are used, so that
``unitrain.settings.configure_environment()`` can set their defaults first.
"""

from unitrain.errors import JobValidationError, NotFoundError, UnitrainError
from unitrain.job.params import TrainParams, TuneConfig, parse_job, validate_params
from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.job.records import CatalogEntry, Checkpoint, Dataset, ModelRecord
from unitrain.planning import plan_job
from unitrain.plugin_api import TrainRun
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.registry import ModelRegistry

__all__ = [
    "CatalogEntry",
    "Checkpoint",
    "Dataset",
    "DatasetCatalog",
    "JobPlan",
    "JobValidationError",
    "ModelRecord",
    "ModelRegistry",
    "NotFoundError",
    "TrainParams",
    "TrainRun",
    "TuneConfig",
    "TuningPlan",
    "UnitrainError",
    "parse_job",
    "plan_job",
    "validate_params",
]
