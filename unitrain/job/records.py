"""The records the layers pass to each other: a dataset, a model, a checkpoint, an earlier trial.

They are small frozen dataclasses that pickle (they travel to Ray workers and
between Prefect tasks), defined here so that the store that makes one and
the code that reads it need not know each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CatalogEntry", "Checkpoint", "Dataset", "EarlierTrial", "ModelRecord"]


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset the catalog knows."""

    id: int
    name: str
    uri: str
    sha256: str | None = None
    size: int | None = None
    added_at: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset, as handed to a plugin: a local ``path`` to read."""

    id: int
    name: str
    uri: str
    path: str
    sha256: str


@dataclass(frozen=True)
class ModelRecord:
    """A registered model version as users see it."""

    model_id: int
    job: str
    plugin: str
    dataset: str
    trial_id: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, float]
    run_id: str
    source: str
    best: bool
    created: int
    #: the job's MLflow run (what the job recorded of itself: see ``unitrain replay``)
    job_run: str = ""


@dataclass(frozen=True)
class Checkpoint:
    """What a plugin continues from, as handed to it: a local folder plus metadata.

    Either a registered model (the job's ``checkpoint``: ``model_id`` and its
    ``record``), or a checkpoint the job saved itself while it ran (``model_id``
    is None): a trial retried or resumed, a trial that PBT restarted from
    another's state, a training job resumed after a crash. Such a checkpoint
    :attr:`continues` work in progress: the plugin goes on where it stopped.
    """

    model_id: int | None
    path: str
    record: ModelRecord | None = None
    #: how many reports (``run.report``) were behind the checkpoint when it was saved
    iteration: int = 0
    #: the trial that saved it ('' for a registered model or a training job)
    trial_id: str = ""

    @property
    def continues(self) -> bool:
        """Whether this is the job's own work in progress (else a finished, registered model)."""
        return self.model_id is None

    @property
    def metadata(self) -> dict[str, Any]:
        if self.record is not None:
            return asdict(self.record)
        return {"iteration": self.iteration, "trial_id": self.trial_id}


@dataclass(frozen=True)
class EarlierTrial:
    """A finished trial of an earlier search that a job extends, as read back from MLflow."""

    job: str
    trial_id: str
    #: the searched hyperparameters, as the trial ran with them
    config: dict[str, Any]
    metrics: dict[str, float]
    #: the registered model of the trial (None when it was not kept)
    model_id: int | None
    run_id: str
    finished_at: float

    @property
    def key(self) -> str:
        """How the trial is named beside this job's trials: ``<job>/<trial ID>``."""
        return f"{self.job}/{self.trial_id}"

    @property
    def has_model(self) -> bool:
        return self.model_id is not None

    def objective(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return value if value is not None and math.isfinite(value) else None
