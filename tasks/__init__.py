"""The steps of the train DAG, one Prefect task per module."""

from unitrain.tasks.log_trials import log_trials
from unitrain.tasks.prepare_dataset import prepare_dataset
from unitrain.tasks.register_best_trial import register_best_trial
from unitrain.tasks.train_model import train_model
from unitrain.tasks.tune_trials import tune_trials
from unitrain.tasks.upload_models import ModelUpload, upload_models
from unitrain.tasks.validate_job import validate_job

__all__ = [
    "log_trials",
    "prepare_dataset",
    "register_best_trial",
    "train_model",
    "tune_trials",
    "ModelUpload",
    "upload_models",
    "validate_job",
]
