"""What is written to MLflow in one go: a finished run, a best mark; and who writes them.

A trial that ended before its MLflow run was made (any trial shorter than a
couple of seconds) is written once, whole: its run, parameters, metrics,
artifacts, status and model version (:class:`FinishedRun`). Marking a job's
best model moves a tag and an alias (:class:`BestMark`). A :class:`RunWriter`
does both; ``unitrain.stores.writers.writer_for`` picks one per store, once:

- ``ClientWriter`` (``unitrain.stores.client_writer``), MLflow's public
  client, for every store: a few batched calls per run, each create made once
  (found again by its request key when its reply was lost, see
  ``unitrain.stores.retry``);
- :class:`~unitrain.stores.sqlite_writer.SqliteWriter`, for an SQLite store
  with its artifacts in a local folder, on the MLflow versions its comparison
  test covers: the same rows in one transaction, which costs the driver a
  fraction of the client's calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from unitrain.stores.mlflow_store import TAG

__all__ = ["BestMark", "FinishedRun", "ModelVersion", "RunWriter", "Written"]


@dataclass(frozen=True)
class ModelVersion:
    """A model version to register with a run (its files are one of the run's uploads)."""

    registered_model: str
    #: where in the run's artifacts the model's files go
    artifact_path: str
    description: str
    tags: dict[str, str]


@dataclass(frozen=True)
class FinishedRun:
    """A run written once, when it has ended: everything MLflow keeps of it."""

    #: made once per run and kept across attempts: the run's ID in an SQLite
    #: store, and the key that finds a run whose creation's reply was lost
    request: str
    experiment_id: str
    name: str
    status: str
    start_ms: int
    end_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    #: (key, value, timestamp in ms, step), in the order they were logged
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    #: (local folder, artifact path or None) to upload into the run's artifacts
    uploads: tuple[tuple[str, str | None], ...] = ()
    model: ModelVersion | None = None


@dataclass(frozen=True)
class Written:
    """A run as written: its ID, and the model ID registered with it."""

    run_id: str
    model_id: int | None


@dataclass(frozen=True)
class BestMark:
    """One model version marked as its job's best: a tag on it (and on no other), and an alias."""

    registered_model: str
    version: int
    #: versions that carry the tag now and lose it
    others: tuple[int, ...]
    alias: str
    tag: str = TAG.BEST


class RunWriter(Protocol):
    def write_many(self, runs: Sequence[FinishedRun], *, again: bool = False) -> list[Written]:
        """Write runs that have ended, with their model versions; ``again``: an earlier
        attempt at these runs may have taken effect."""
        ...

    def mark_best(self, mark: BestMark) -> None: ...
