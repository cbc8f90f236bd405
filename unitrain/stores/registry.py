"""The model registry: every trained model is a version of one MLflow registered model.

A model's ID is its version number in the registered model ``unitrain``
(``UNITRAIN_REGISTERED_MODEL`` renames it), so IDs are integers, unique across
plugins and jobs, and any of them can be the ``checkpoint`` of a later job.
Each version is tagged with the job name, plugin, dataset, trial ID,
hyperparameters and final metrics.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitrain.errors import NotFoundError, StoreUnavailableError
from unitrain.settings import settings
from unitrain.stores.retry import RetryingClient, is_transient, masked_uri, retrying, scrub
from unitrain.stores.sql_writes import BestMark, FinishedRun, SqlRunWriter, writes_directly

if TYPE_CHECKING:
    from unitrain.plugin_api import Checkpoint

__all__ = ["ModelRecord", "ModelRegistry", "EXPERIMENT_NAME", "TAG", "best_alias"]

EXPERIMENT_NAME = "unitrain"
_WAL_CHECKED: set[str] = set()
_REGISTERED: set[tuple[str, str]] = set()  # (store, registered model) known to exist
# tracking URI -> experiment ID; a trial worker looks it up once, not once per trial.
_EXPERIMENT_IDS: dict[str, str] = {}
_ARTIFACT_LOCATIONS: dict[str, str] = {}  # tracking URI -> the experiment's artifact location
_WRITERS: dict[str, SqlRunWriter] = {}
BEST_ALIAS_PREFIX = "best-"


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
    FLOW_RUN = "unitrain.prefect_flow_run"
    NODE = "unitrain.ray_node"
    #: "tuning" on a tuning job's own run (the runs a later search can extend)
    MODE = "unitrain.mode"
    #: the job's own MLflow run (a tuning job's parent run): with the trial ID,
    #: the key that makes registering a model idempotent
    JOB_RUN = "unitrain.job_run"


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


class ModelRegistry:
    """Registers, finds and downloads models in MLflow."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        name: str | None = None,
        *,
        store_retry_s: float | None = None,
    ) -> None:
        from mlflow import MlflowClient

        config = settings()
        self.tracking_uri = tracking_uri or config.mlflow_tracking_uri()
        self.name = name or config.registered_model
        _prepare_sqlite_store(self.tracking_uri)
        # run ID -> artifact URI of the runs this registry created (spares a lookup per trial)
        self._artifact_uris: dict[str, str] = {}
        self._store_retry_s = store_retry_s
        self.client: Any = RetryingClient(
            MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri),
            self.tracking_uri,
            budget_s=store_retry_s,
        )

    @property
    def shown_uri(self) -> str:
        """The tracking URI with any credentials masked."""
        return masked_uri(self.tracking_uri)

    # -- experiments and runs ----------------------------------------------

    def experiment_id(self) -> str:
        cached = _EXPERIMENT_IDS.get(self.tracking_uri)
        if cached is not None:
            return cached
        experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is not None:
            _EXPERIMENT_IDS[self.tracking_uri] = str(experiment.experiment_id)
            return str(experiment.experiment_id)
        # A tracking server picks its own artifact store; a database store we
        # point at the home folder (or UNITRAIN_ARTIFACT_ROOT) instead of the cwd.
        served = self.tracking_uri.split(":", 1)[0] in ("http", "https", "databricks")
        location = None if served else settings().mlflow_artifact_root()
        try:
            return str(self.client.create_experiment(EXPERIMENT_NAME, artifact_location=location))
        except Exception:  # created meanwhile by a concurrent job
            experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def start_run(
        self,
        plan: Any,
        *,
        run_name: str,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        start_time_ms: int | None = None,
    ) -> str:
        """Create a run of ``plan``'s job, tagged as every unitrain run is; return its ID."""
        all_tags = run_tags(plan, tags, parent_run_id)
        run = self.client.create_run(
            self.experiment_id(), start_time=start_time_ms, run_name=run_name, tags=all_tags
        )
        self._artifact_uris[str(run.info.run_id)] = str(run.info.artifact_uri)
        return str(run.info.run_id)

    @property
    def writes_runs_at_once(self) -> bool:
        """Whether :meth:`write_finished_run` can be used: a store in an SQLite file whose
        artifacts are in a folder here (uploading elsewhere goes through the run's record)."""
        return writes_directly(self.tracking_uri) and _is_local(self._artifact_location())

    def _artifact_location(self) -> str:
        if self.tracking_uri not in _ARTIFACT_LOCATIONS:
            experiment = self.client.get_experiment(self.experiment_id())
            _ARTIFACT_LOCATIONS[self.tracking_uri] = str(experiment.artifact_location)
        return _ARTIFACT_LOCATIONS[self.tracking_uri]

    def new_run_location(self) -> tuple[str, str]:
        """A new run's ID and artifact URI, for a run written with :meth:`write_finished_run`."""
        run_id = FinishedRun.new_run_id()
        uri = FinishedRun.artifact_uri_of(self._artifact_location(), run_id)
        self._artifact_uris[run_id] = uri
        return run_id, uri

    def write_finished_run(self, run: FinishedRun) -> int | None:
        """Write a run that has ended, and its model version, in one transaction.

        Returns the model ID registered with it, if any. Far cheaper than the
        calls that build a run step by step (see ``unitrain.stores.sql_writes``).
        """
        return self.write_finished_runs([run])[0]

    def write_finished_runs(self, runs: Sequence[FinishedRun]) -> list[int | None]:
        """Write runs that have ended, and their model versions, all in one transaction."""
        if any(run.model is not None for run in runs):
            self.ensure_registered_model()
        writer = self._writer()
        names = ", ".join(run.name for run in runs[:3]) + (" ..." if len(runs) > 3 else "")
        return retrying(
            lambda: writer.write_many(runs),
            store=self.tracking_uri,
            what=f"recording run(s) {names}",
            budget_s=self._store_retry_s,
        )

    def _writer(self) -> SqlRunWriter:
        if self.tracking_uri not in _WRITERS:
            _WRITERS[self.tracking_uri] = SqlRunWriter(self.tracking_uri)
        return _WRITERS[self.tracking_uri]

    def end_run(self, run_id: str, status: str) -> None:
        """End a run as ``FINISHED``, ``FAILED`` or ``KILLED``."""
        self.client.set_terminated(run_id, status)

    def reopen_run(self, run_id: str) -> None:
        """Mark a run RUNNING again (a resumed job continues its own run)."""
        self.client.update_run(run_id, status="RUNNING")

    def end_stale_runs(self, job: str, status: str = "KILLED") -> list[str]:
        """End every run of ``job`` still marked RUNNING; return their IDs.

        Called while the job's name is held: no run of the job can be live then,
        so a RUNNING one was left by a process that died.
        """
        quoted = _quoted(job)
        query = "attributes.status = 'RUNNING'"
        if quoted is not None:
            query += f" and tags.`{TAG.JOB}` = {quoted}"
        found = self.client.search_runs(
            [self.experiment_id()], filter_string=query, max_results=5000
        )
        runs = [run for run in found if run.data.tags.get(TAG.JOB) == job]
        for run in runs:
            self.client.set_terminated(run.info.run_id, status)
        return [str(run.info.run_id) for run in runs]

    def resolve_checkpoint(
        self, model_id: int | None, destination: str | Path
    ) -> Checkpoint | None:
        """Download a job's ``checkpoint`` model, as the plugin receives it."""
        from unitrain.plugin_api import Checkpoint

        if model_id is None:
            return None
        path = self.download(model_id, destination)
        return Checkpoint(model_id, str(path), self.get(model_id))

    def log_params(self, run_id: str, values: dict[str, Any]) -> None:
        """Hyperparameters as run parameters, in one write."""
        from mlflow.entities import Param

        params = [
            Param(key, value if isinstance(value, str) else json.dumps(value, default=str))
            for key, value in values.items()
        ]
        if params:
            self.client.log_batch(run_id, params=params)

    def artifact_uri(self, run_id: str) -> str:
        """A run's artifact URI (remembered for the runs this registry created)."""
        if run_id not in self._artifact_uris:
            self._artifact_uris[run_id] = str(self.client.get_run(run_id).info.artifact_uri)
        return self._artifact_uris[run_id]

    def log_artifacts(
        self, run_id: str, folder: str | Path, artifact_path: str | None = None
    ) -> None:
        """Upload a folder's files into a run's artifacts (under ``artifact_path``).

        An artifact store on this machine is a folder: the files are copied into
        it directly, which spares MLflow's run lookup per call (a trial's share
        of its bookkeeping). Other stores go through MLflow.
        """
        uri = self.artifact_uri(run_id)
        if not _is_local(uri):
            self.client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)
            return
        from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

        LocalArtifactRepository(uri).log_artifacts(str(folder), artifact_path)

    # -- registering -------------------------------------------------------

    def register(
        self,
        *,
        run_id: str,
        model_dir: str | Path,
        job: str,
        plugin: str,
        dataset: int | str,
        hyperparameters: dict[str, Any],
        metrics: dict[str, float],
        trial_id: str = "",
        artifact_path: str = "model",
        job_run: str = "",
        existing: dict[str, int] | None = None,
    ) -> int:
        """Upload ``model_dir`` into ``run_id``'s artifacts and register it; return the model ID.

        Idempotent for a ``job_run``: a model already registered for the same
        job run and trial (looked up in ``existing``, else in the registry) is
        returned instead of registered twice, so a retried upload adds nothing.
        """
        if job_run:
            known = existing if existing is not None else self.registered_trials(job, job_run)
            if trial_id in known:
                return known[trial_id]
        self.log_artifacts(run_id, model_dir, artifact_path)
        source = f"{self.artifact_uri(run_id)}/{artifact_path}"
        self.ensure_registered_model()
        description, tags = version_description(
            job=job,
            plugin=plugin,
            dataset=dataset,
            hyperparameters=hyperparameters,
            metrics=metrics,
            trial_id=trial_id,
            job_run=job_run,
        )
        version = self.client.create_model_version(
            self.name, source=source, run_id=run_id, description=description, tags=tags
        )
        return int(version.version)

    def registered_trials(self, job: str, job_run: str) -> dict[str, int]:
        """Trial ID -> model ID of the models already registered for one job run."""
        return {
            v.tags.get(TAG.TRIAL, ""): int(v.version)
            for v in self._search(job)
            if v.tags.get(TAG.JOB_RUN) == job_run
        }

    def mark_best(self, model_id: int, job: str) -> None:
        """Tag a version as its job's best (and no other), and point ``best-<job>`` at it."""
        # Only the versions tagged best: a job of a thousand trials has a thousand.
        others = tuple(
            int(version.version)
            for version in self._search(job, best_only=True)
            if version.tags.get(TAG.BEST) == "true" and int(version.version) != model_id
        )
        if writes_directly(self.tracking_uri):
            mark = BestMark(self.name, model_id, TAG.BEST, others, best_alias(job))
            writer = self._writer()
            retrying(
                lambda: writer.mark_best(mark),
                store=self.tracking_uri,
                what=f"marking model {model_id} as the best of {job!r}",
                budget_s=self._store_retry_s,
            )
            return
        # The new mark first: a version that is gone fails before anything changed.
        self.client.set_model_version_tag(self.name, str(model_id), TAG.BEST, "true")
        self.client.set_registered_model_alias(self.name, best_alias(job), str(model_id))
        for version in others:
            self.client.delete_model_version_tag(self.name, str(version), TAG.BEST)

    def ensure_registered_model(self) -> None:
        """Create the registered model that holds every version, once per process."""
        if (self.tracking_uri, self.name) in _REGISTERED:
            return
        self._create_registered_model()
        _REGISTERED.add((self.tracking_uri, self.name))

    def _create_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    self.name, description="Models trained by unitrain; version = model ID."
                )
            except MlflowException:
                pass  # created meanwhile by a concurrent job

    # -- finding -----------------------------------------------------------

    def get(self, model_id: int) -> ModelRecord:
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version(self.name, str(model_id))
        except StoreUnavailableError:
            raise
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST" and is_transient(error):
                raise StoreUnavailableError(
                    f"the MLflow store at {self.shown_uri} could not be read: {scrub(str(error))}"
                ) from None
            if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise StoreUnavailableError(
                    f"the MLflow store at {self.shown_uri} failed to look up model "
                    f"{model_id}: {error.error_code}"
                ) from None
            raise NotFoundError(
                f"checkpoint: model {model_id} does not exist in the registry "
                f"({self.name!r} at {self.shown_uri}); see 'unitrain models list'"
            ) from None
        return _record(version)

    def models(self, job: str | None = None) -> list[ModelRecord]:
        """Every model (of one job), oldest first."""
        records = [_record(v) for v in self._search(job)]
        return sorted(records, key=lambda r: r.model_id)

    def job_exists(self, job: str) -> bool:
        return self.latest_of(job) is not None

    def latest_of(self, job: str) -> int | None:
        newest = self._search(job, max_results=1)
        return int(newest[0].version) if newest else None

    def best_of(self, job: str) -> int | None:
        """The model ``best-<job>`` points at, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(self.name, best_alias(job)).version)
        except MlflowException:
            return None

    def _search(
        self, job: str | None, max_results: int | None = None, *, best_only: bool = False
    ) -> list[Any]:
        """Model versions, newest first, all pages (or the first ``max_results``)."""
        query = f"name = '{self.name}'"
        if best_only:
            query += f" and tags.`{TAG.BEST}` = 'true'"
        filter_here = False
        if job is not None:
            quoted = _quoted(job)
            if quoted is None:  # both quotes in the name: filter here instead
                filter_here, max_results = True, None
            else:
                query += f" and tags.`{TAG.JOB}` = {quoted}"
        found: list[Any] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                query,
                max_results=max_results or 1000,
                order_by=["version_number DESC"],
                page_token=token,
            )
            found.extend(v for v in page if not filter_here or v.tags.get(TAG.JOB) == job)
            token = page.token
            if not token or (max_results and len(found) >= max_results):
                return found[:max_results] if max_results else found

    def download(self, model_id: int, destination: str | Path) -> Path:
        """Download a model's files; return the local folder."""
        import mlflow

        record = self.get(model_id)
        Path(destination).mkdir(parents=True, exist_ok=True)
        local = retrying(
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=record.source,
                dst_path=str(destination),
                tracking_uri=self.tracking_uri,
            ),
            store=self.tracking_uri,
            what=f"downloading model {model_id}",
        )
        return Path(local)


def _prepare_sqlite_store(tracking_uri: str) -> None:
    """Create an SQLite store's tables (one process at a time), and put it in WAL mode.

    MLflow creates its tables on first use; jobs that start at once on a new
    store would run the same migrations side by side and fail ("duplicate
    column"), so a file lock makes one of them do it while the others wait.
    With a write-ahead log readers never wait for writers and a commit costs
    one sync instead of several, which is most of what a short trial spends on
    MLflow. Done once per process; both survive in the file.
    """
    if not tracking_uri.startswith("sqlite:///") or tracking_uri in _WAL_CHECKED:
        return
    _WAL_CHECKED.add(tracking_uri)
    import fcntl
    import sqlite3

    path = Path(tracking_uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".init.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _has_tables(path):
                import logging

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
    _sync_at_checkpoints(path)


def _sync_at_checkpoints(path: Path) -> None:
    """Make this process's connections to the store sync the log at checkpoints, not at commits.

    SQLite's ``synchronous=NORMAL`` in WAL mode: a commit no longer waits for
    the disk (most of the cost of a trial's bookkeeping), the store stays
    consistent through any crash of a process, and only a crash of the machine
    itself can lose the last commits. A per-connection setting, so it is set on
    every connection SQLAlchemy opens to this file.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(path.resolve())

    def on_connect(connection: Any, _record: Any) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return  # another driver (Prefect's aiosqlite sets this itself)
        files = {row[2] for row in connection.execute("PRAGMA database_list")}
        if target in files:
            connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(Engine, "connect", on_connect)


def _has_tables(path: Path) -> bool:
    import sqlite3

    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        found = connection.execute(
            "select count(*) from sqlite_master where type='table' and name='registered_models'"
        ).fetchone()
    return bool(found and found[0])


def _is_local(uri: str) -> bool:
    """Whether an artifact URI is a folder on this machine."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    return (parsed.scheme == "file" and parsed.netloc in ("", "localhost")) or (
        parsed.scheme == "" and uri.startswith("/")
    )


def _quoted(value: str) -> str | None:
    """``value`` in MLflow's filter language, which has no escapes: the quote it lacks."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


def run_tags(plan: Any, tags: dict[str, str] | None, parent_run_id: str | None) -> dict[str, str]:
    """The tags of a run of ``plan``'s job, as every unitrain run has them."""
    all_tags = {
        TAG.JOB: plan.job,
        TAG.PLUGIN: plan.plugin,
        TAG.DATASET: str(plan.dataset.id),
        TAG.CHECKPOINT: str(plan.checkpoint_id or ""),
        **(tags or {}),
    }
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    return all_tags


def version_description(
    *,
    job: str,
    plugin: str,
    dataset: int | str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, float],
    trial_id: str = "",
    job_run: str = "",
) -> tuple[str, dict[str, str]]:
    """The description and tags of a model version."""
    description = f"job {job}" + (f", trial {trial_id}" if trial_id else "")
    return description, {
        TAG.JOB: job,
        TAG.PLUGIN: plugin,
        TAG.DATASET: str(dataset),
        TAG.TRIAL: trial_id,
        TAG.HYPERPARAMETERS: json.dumps(hyperparameters, sort_keys=True, default=str),
        TAG.METRICS: json.dumps(metrics, sort_keys=True),
        **({TAG.JOB_RUN: job_run} if job_run else {}),
    }


def best_alias(job: str) -> str:
    """``best-<job>``; MLflow aliases allow letters, digits, ``-`` and ``_`` only.

    A name with other characters gets a short digest, so two jobs never share an alias.
    """
    import hashlib

    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in job)
    if safe != job:
        safe = f"{safe[:200]}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"
    return BEST_ALIAS_PREFIX + safe


def _record(version: Any) -> ModelRecord:
    tags = version.tags or {}
    return ModelRecord(
        model_id=int(version.version),
        job=tags.get(TAG.JOB, ""),
        plugin=tags.get(TAG.PLUGIN, ""),
        dataset=tags.get(TAG.DATASET, ""),
        trial_id=tags.get(TAG.TRIAL, ""),
        hyperparameters=json.loads(tags.get(TAG.HYPERPARAMETERS, "{}")),
        metrics=json.loads(tags.get(TAG.METRICS, "{}")),
        run_id=version.run_id or "",
        source=version.source,
        best=tags.get(TAG.BEST) == "true",
        created=int(version.creation_timestamp or 0),
    )
