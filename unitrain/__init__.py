"""unitrain: train and tune models from one JSON job.

The public API::

    from unitrain import parse_job, plan_job, TrainRun, DatasetCatalog, ModelRegistry

Prefect, Ray and MLflow are imported only where they are used, so that
``unitrain.home.configure_environment()`` can set their defaults first.
"""

from unitrain.catalog import CatalogEntry, Dataset, DatasetCatalog
from unitrain.errors import JobValidationError, NotFoundError, UnitrainError
from unitrain.jobs import JobPlan, plan_job
from unitrain.params import TrainParams, TuneConfig, parse_job, validate_params
from unitrain.registry import Checkpoint, ModelRecord, ModelRegistry
from unitrain.run import TrainRun

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
    "UnitrainError",
    "parse_job",
    "plan_job",
    "validate_params",
]
