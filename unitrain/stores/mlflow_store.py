"""One MLflow store as unitrain reaches it: the connection that the runs, the models and
the studies share.

:class:`MlflowStore` owns the MLflow client (every call retried on transient
errors, see ``unitrain.stores.retry``), the experiment every unitrain run
belongs to, and what is known once per store and process (the experiment's ID
and artifact location, whether the registered model exists). It is internal to
``unitrain.stores``: other layers use :class:`~unitrain.stores.runs.RunStore`,
:class:`~unitrain.stores.registry.ModelRegistry` and
:class:`~unitrain.stores.studies.StudyStore`, which hand no client out. MLflow's
filter strings are built here too (:class:`Filter`), the only place that
knows that the language has no escapes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from unitrain.settings import settings
from unitrain.stores.retry import RetryingClient, masked_uri, retrying

__all__ = ["EXPERIMENT_NAME", "TAG", "Filter", "MlflowStore", "is_local", "new_request_key"]

log = logging.getLogger(__name__)

EXPERIMENT_NAME = "unitrain"


class TAG:
    """Tag keys on runs and model versions."""

    JOB = "unitrain.job"
    PLUGIN = "unitrain.plugin"
    DATASET = "unitrain.dataset"
    TRIAL = "unitrain.trial_id"
    HYPERPARAMETERS = "unitrain.hyperparameters"
    METRICS = "unitrain.metrics"
    CHECKPOINT = "unitrain.checkpoint"
    BEST = "unitrain.best"
    #: on every model of a Pareto front (several objectives)
    PARETO = "unitrain.pareto"
    FLOW_RUN = "unitrain.prefect_flow_run"
    NODE = "unitrain.ray_node"
    #: the job's mode on its own run ("tuning": the runs a later search can extend)
    MODE = "unitrain.mode"
    #: the job's own MLflow run (a tuning job's parent run): with the trial ID,
    #: the key that makes registering a model idempotent
    JOB_RUN = "unitrain.job_run"
    #: a key made for each create call, so that a call whose reply was lost is
    #: found instead of made twice
    REQUEST = "unitrain.request"
    PARENT = "mlflow.parentRunId"
    # What a model needs to be made again (``unitrain replay``), on the job's run:
    #: the SHA-256 of the dataset's content the job trained on
    DATASET_SHA256 = "unitrain.dataset_sha256"
    PLUGIN_VERSION = "unitrain.plugin_version"
    #: JSON: distribution -> version of the libraries a model's numbers depend on
    LIBRARIES = "unitrain.libraries"
    #: on the job's run: what the promotion gate decided
    PROMOTION = "unitrain.promotion"


def new_request_key() -> str:
    return uuid.uuid4().hex


def quoted(value: str) -> str | None:
    """``value`` in MLflow's filter language, which has no escapes: the quote it lacks."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


class Filter:
    """MLflow filter strings, built in one place.

    A value holding both quotes cannot be written in MLflow's filter language;
    such a condition is left out, and the ``*_here`` helpers of the callers
    filter what comes back instead.
    """

    @staticmethod
    def tag(key: str, value: str) -> str | None:
        text = quoted(value)
        return None if text is None else f"tags.`{key}` = {text}"

    @staticmethod
    def join(*conditions: str | None) -> str:
        return " and ".join(c for c in conditions if c)

    @staticmethod
    def runs_of_job(
        job: str,
        *,
        status: str | None = None,
        mode: str | None = None,
        before_ms: int | None = None,
    ) -> str:
        return Filter.join(
            Filter.tag(TAG.JOB, job),
            Filter.tag(TAG.MODE, mode) if mode else None,
            f"attributes.status = '{status}'" if status else None,
            f"attributes.start_time < {int(before_ms)}" if before_ms is not None else None,
        )

    @staticmethod
    def children_of(run_id: str, *, status: str | None = None) -> str:
        return Filter.join(
            Filter.tag(TAG.PARENT, run_id), f"attributes.status = '{status}'" if status else None
        )

    @staticmethod
    def versions(name: str, **tags: str) -> str:
        """The versions of registered model ``name`` whose tags hold ``tags`` (keys of TAG)."""
        return Filter.join(
            f"name = {quoted(name)}", *(Filter.tag(getattr(TAG, k), v) for k, v in tags.items())
        )


@dataclass
class _Known:
    """What one process learns once about one store."""

    experiment_id: str | None = None
    artifact_location: str | None = None
    registered_models: set[str] = field(default_factory=set)
    prepared: bool = False


_KNOWN: dict[str, _Known] = {}  # tracking URI -> what is known of it


class MlflowStore:
    """The tracking store and registry at ``tracking_uri`` (default: the configured one)."""

    def __init__(self, tracking_uri: str | None = None, *, store_retry_s: float | None = None):
        from mlflow import MlflowClient

        config = settings()
        self.tracking_uri = tracking_uri or config.mlflow_tracking_uri()
        self.registered_model = config.registered_model
        self.store_retry_s = store_retry_s
        self._known = _KNOWN.setdefault(self.tracking_uri, _Known())
        if not self._known.prepared:
            _prepare_sqlite_store(self.tracking_uri)
            self._known.prepared = True
        #: for the modules of unitrain.stores only
        self.client: Any = RetryingClient(
            MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri),
            self.tracking_uri,
            budget_s=store_retry_s,
        )

    @property
    def shown_uri(self) -> str:
        """The tracking URI with any credentials masked."""
        return masked_uri(self.tracking_uri)

    @property
    def served(self) -> bool:
        """Whether the store is a tracking server (which picks its own artifact store)."""
        return self.tracking_uri.split(":", 1)[0] in ("http", "https", "databricks")

    def retrying(self, call: Any, what: str) -> Any:
        return retrying(call, store=self.tracking_uri, what=what, budget_s=self.store_retry_s)

    def experiment_id(self) -> str:
        if self._known.experiment_id is not None:
            return self._known.experiment_id
        experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is None:
            # A database store's artifacts go to the home folder (or
            # UNITRAIN_ARTIFACT_ROOT) instead of the working directory.
            location = None if self.served else settings().mlflow_artifact_root()
            try:
                self.client.create_experiment(EXPERIMENT_NAME, artifact_location=location)
            except Exception:  # noqa: BLE001 (made meanwhile by a concurrent job, or a lost reply)
                pass
            experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
            if experiment is None:
                raise RuntimeError(f"could not create the MLflow experiment {EXPERIMENT_NAME!r}")
        self._known.experiment_id = str(experiment.experiment_id)
        self._known.artifact_location = str(experiment.artifact_location)
        return self._known.experiment_id

    def artifact_location(self) -> str:
        """The experiment's artifact location (a folder URI on an SQLite store)."""
        if self._known.artifact_location is None:
            self.experiment_id()
        assert self._known.artifact_location is not None
        return self._known.artifact_location

    def ensure_registered_model(self) -> None:
        """Create the registered model that holds every version, once per process."""
        name = self.registered_model
        if name in self._known.registered_models:
            return
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    name, description="Models trained by unitrain; version = model ID."
                )
            except MlflowException:
                pass  # made meanwhile by a concurrent job
        self._known.registered_models.add(name)


def is_local(uri: str) -> bool:
    """Whether an artifact URI is a folder on this machine."""
    parsed = urlparse(uri)
    return (parsed.scheme == "file" and parsed.netloc in ("", "localhost")) or (
        parsed.scheme == "" and uri.startswith("/")
    )


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of an SQLite tracking URI, else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def _prepare_sqlite_store(tracking_uri: str) -> None:
    """Create an SQLite store's tables (one process at a time), and put it in WAL mode.

    MLflow creates its tables on first use; jobs that start at once on a new
    store would run the same migrations side by side and fail ("duplicate
    column"), so a file lock makes one of them do it while the others wait.
    With a write-ahead log readers never wait for writers. Both survive in the file.
    """
    path = sqlite_path(tracking_uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".init.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _has_tables(path):
                from mlflow.store.model_registry.sqlalchemy_store import (
                    SqlAlchemyStore as RegistryStore,
                )
                from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

                # MLflow announces each step of creating its tables: noise for a user.
                logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
                SqlAlchemyStore(tracking_uri, settings().mlflow_artifact_root())
                RegistryStore(tracking_uri)
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _has_tables(path: Path) -> bool:
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        found = connection.execute(
            "select count(*) from sqlite_master where type='table' and name='registered_models'"
        ).fetchone()
    return bool(found and found[0])
