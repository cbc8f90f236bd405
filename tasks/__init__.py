"""The steps of the train DAG, one Prefect task per module."""

from unitrain.tasks.log_trials import log_trials
from unitrain.tasks.mark_best_trial import mark_best_trial
from unitrain.tasks.prepare_dataset import prepare_dataset
from unitrain.tasks.promote_model import promote_model
from unitrain.tasks.train_model import train_model
from unitrain.tasks.tune_trials import tune_trials
from unitrain.tasks.upload_models import upload_models
from unitrain.tasks.validate_job import validate_job

__all__ = [
    "log_trials",
    "mark_best_trial",
    "prepare_dataset",
    "promote_model",
    "train_model",
    "tune_trials",
    "upload_models",
    "validate_job",
]
