"""The steps of the train DAG, one Prefect task per module."""

from tasks.prepare_dataset import prepare_dataset
from tasks.train_model import train_model
from tasks.upload_models import upload_model
from tasks.validate_job import validate_job

__all__ = ["prepare_dataset", "train_model", "upload_model", "validate_job"]
