"""Finished runs and the best mark, written to an SQLite store in one transaction each.

Through MLflow's client, recording a short trial takes several calls (create
the run, log its metrics and parameters, end it, register its model) and about
47 SQL statements: each call opens a session, looks the experiment or the run
up again and turns what it wrote back into entities. In a search of many short
trials that is most of what the driver does (about 45 ms of CPU a trial here),
and it competes with Ray Tune's loop for the same interpreter.

For a store in an SQLite file (the default) this writer inserts the same rows
with a handful of statements in one transaction, through the table
definitions of the installed MLflow (so the columns and their defaults are
MLflow's own): a trial's run and its model version appear together or not at
all. What it writes is read back by MLflow as if its client had written it;
``tests/unit/test_sqlite_writer.py`` compares the two field by field. That
comparison holds for the MLflow versions in :data:`VERIFIED_MLFLOW` only:
with any other, :func:`unverified_reason` says so and the store is written
through the client (``unitrain.stores.writers``). Rows go to the workspace
MLflow makes active (``MLFLOW_WORKSPACE``, else its default).

Marking a job's best model is written here too: through the client, each of
its calls first reads the whole registered model, every version of every job
(MLflow checks that the name is not a prompt's), so it grew slower with every
model ever registered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from unitrain.stores.mlflow_store import TAG, MlflowStore
from unitrain.stores.writes import BestMark, FinishedRun, ModelVersion, Written

__all__ = ["VERIFIED_MLFLOW", "SqliteWriter", "unverified_reason"]

#: the MLflow releases (major.minor) whose tables the comparison test has checked
VERIFIED_MLFLOW = frozenset({"3.17", "3.18"})

_MLFLOW_RUN_NAME = "mlflow.runName"
_MLFLOW_USER = "mlflow.user"
_LARGEST_FLOAT = 1.7976931348623157e308  # what MLflow stores for an infinite metric


def unverified_reason(version: str | None = None) -> str:
    """Why this writer must not be used with this MLflow ('' when it may)."""
    if version is None:
        import mlflow

        version = mlflow.__version__
    release = ".".join(version.split(".")[:2])
    if release in VERIFIED_MLFLOW:
        return ""
    return (
        f"the SQLite fast path is verified for MLflow {', '.join(sorted(VERIFIED_MLFLOW))}, "
        f"this is MLflow {version}"
    )


class SqliteWriter:
    """Writes :class:`FinishedRun` s into one MLflow SQLite store whose artifacts are local."""

    def __init__(self, store: MlflowStore) -> None:
        import sqlalchemy
        from mlflow.utils.workspace_utils import resolve_entity_workspace_name
        from sqlalchemy import event

        self.store = store
        self.workspace = resolve_entity_workspace_name(None)
        # SQLite serialises writers; a commit waits up to 30 s for another's
        # (then the caller's retries take over, as for any call to the store).
        self._engine = sqlalchemy.create_engine(store.tracking_uri, connect_args={"timeout": 30})
        # In WAL mode a commit need not wait for the disk: the store stays
        # consistent through any crash of a process, and only a crash of the
        # machine itself can lose the last commits.
        event.listen(self._engine, "connect", _sync_at_checkpoints)

    def write_many(self, runs: Sequence[FinishedRun], *, again: bool = False) -> list[Written]:
        """Write runs (and their model versions) in one transaction.

        A statement per table for them all: a search's short trials, recorded a
        few at a time, cost the driver a fraction of what one transaction each
        did. A transaction that failed wrote nothing, so ``again`` changes nothing.
        """
        return self.store.retrying(lambda: self._write(runs), f"recording {_names(runs)}")

    def _write(self, runs: Sequence[FinishedRun]) -> list[Written]:
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )

        if not runs:
            return []
        from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

        if any(run.model is not None for run in runs):
            self.store.ensure_registered_model()
        location = self.store.artifact_location()
        run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
        for run in runs:
            run_id = run.request  # a new run's ID, as MLflow makes them (a uuid4's hex)
            artifact_uri = _artifact_uri(location, run_id)
            for folder, path in run.uploads:  # a retry copies the same files again
                LocalArtifactRepository(artifact_uri).log_artifacts(folder, path)
            tags = {**run.tags, TAG.REQUEST: run.request}
            tags.setdefault(_MLFLOW_RUN_NAME, run.name)
            run_rows.append(_run_row(run, tags, artifact_uri))
            tag_rows += [{"key": k, "value": v, "run_uuid": run_id} for k, v in tags.items()]
            param_rows += [
                {"key": k, "value": v, "run_uuid": run_id} for k, v in run.params.items()
            ]
            metrics = _metric_rows(run_id, run.metrics)
            metric_rows += metrics
            latest_rows += _latest(metrics)
        with self._engine.begin() as connection:
            # The first statement writes, so the transaction holds SQLite's write
            # lock from its start: the version numbers read below cannot be taken
            # by another writer before this one commits.
            connection.execute(SqlRun.__table__.insert(), run_rows)
            connection.execute(SqlTag.__table__.insert(), tag_rows)
            if param_rows:
                connection.execute(SqlParam.__table__.insert(), param_rows)
            if metric_rows:
                connection.execute(SqlMetric.__table__.insert(), metric_rows)
                connection.execute(SqlLatestMetric.__table__.insert(), latest_rows)
            models = [
                (
                    run.request,
                    f"{_artifact_uri(location, run.request)}/{model.artifact_path}",
                    model,
                )
                for run in runs
                if (model := run.model) is not None
            ]
            versions = _add_model_versions(connection, models, self.workspace)
        return [Written(run.request, versions.get(run.request)) for run in runs]

    def mark_best(self, mark: BestMark) -> None:
        """Move the tag and point the alias at ``mark.version``, in one transaction."""
        self.store.retrying(
            lambda: self._mark_best(mark), f"marking model {mark.version} as its job's best"
        )

    def _mark_best(self, mark: BestMark) -> None:
        import sqlalchemy
        from mlflow.store.model_registry.dbmodels.models import (
            SqlModelVersion,
            SqlModelVersionTag,
            SqlRegisteredModelAlias,
        )

        versions = SqlModelVersion.__table__
        tags = SqlModelVersionTag.__table__
        aliases = SqlRegisteredModelAlias.__table__
        this_model = (tags.c.name == mark.registered_model) & (tags.c.workspace == self.workspace)
        with self._engine.begin() as connection:
            # Deleting first takes SQLite's write lock for the whole transaction.
            connection.execute(
                tags.delete().where(
                    this_model
                    & (tags.c.key == mark.tag)
                    & tags.c.version.in_([*mark.others, mark.version])
                )
            )
            exists = connection.execute(
                sqlalchemy.select(versions.c.version).where(
                    (versions.c.name == mark.registered_model)
                    & (versions.c.workspace == self.workspace)
                    & (versions.c.version == mark.version)
                )
            ).first()
            if exists is None:  # the whole transaction is undone
                from mlflow.exceptions import MlflowException

                raise MlflowException(
                    f"Model Version (name={mark.registered_model}, version={mark.version}) "
                    "not found",
                    error_code="RESOURCE_DOES_NOT_EXIST",
                )
            where = {"workspace": self.workspace, "name": mark.registered_model}
            connection.execute(
                tags.insert(), {**where, "version": mark.version, "key": mark.tag, "value": "true"}
            )
            connection.execute(
                aliases.delete().where(
                    (aliases.c.name == mark.registered_model)
                    & (aliases.c.workspace == self.workspace)
                    & (aliases.c.alias == mark.alias)
                )
            )
            connection.execute(
                aliases.insert(), {**where, "alias": mark.alias, "version": mark.version}
            )


def _names(runs: Sequence[FinishedRun]) -> str:
    return "run(s) " + ", ".join(run.name for run in runs[:3]) + (" ..." if len(runs) > 3 else "")


def _artifact_uri(location: str, run_id: str) -> str:
    from mlflow.utils.uri import append_to_uri_path

    return str(append_to_uri_path(location, run_id, "artifacts"))


def _sync_at_checkpoints(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


def _run_row(run: FinishedRun, tags: dict[str, str], artifact_uri: str) -> dict[str, Any]:
    return {
        "run_uuid": run.request,
        "name": run.name,
        "source_type": "UNKNOWN",
        "source_name": "",
        "entry_point_name": "",
        "user_id": tags.get(_MLFLOW_USER, "unknown"),
        "status": run.status,
        "start_time": run.start_ms,
        "end_time": run.end_ms,
        "source_version": "",
        "lifecycle_stage": "active",
        "artifact_uri": artifact_uri,
        "experiment_id": int(run.experiment_id),
    }


def _metric_rows(run_id: str, metrics: list[tuple[str, float, int, int]]) -> list[dict[str, Any]]:
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, value, timestamp, step in metrics:
        is_nan = math.isnan(value)
        stored = 0.0 if is_nan else max(-_LARGEST_FLOAT, min(_LARGEST_FLOAT, value))
        row = {
            "key": key,
            "value": stored,
            "timestamp": int(timestamp),
            "step": int(step),
            "is_nan": is_nan,
            "run_uuid": run_id,
        }
        # A metric logged twice with the same step, time and value is one row (MLflow's key).
        rows.setdefault((key, stored, int(timestamp), int(step), is_nan), row)
    return list(rows.values())


def _latest(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each metric's latest value, as MLflow picks it: highest step, then time, then value."""
    latest: dict[str, dict[str, Any]] = {}
    for row in metrics:
        held = latest.get(row["key"])
        if held is None or (row["step"], row["timestamp"], row["value"]) > (
            held["step"],
            held["timestamp"],
            held["value"],
        ):
            latest[row["key"]] = row
    return list(latest.values())


def _add_model_versions(
    connection: Any, models: Sequence[tuple[str, str, ModelVersion]], workspace: str
) -> dict[str, int]:
    """Register each run's model as the next versions of its registered model; run -> version."""
    import sqlalchemy
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
    )

    versions = SqlModelVersion.__table__
    registered = SqlRegisteredModel.__table__
    now = int(time.time() * 1000)
    numbers: dict[str, int] = {}
    for name in dict.fromkeys(model.registered_model for _, _, model in models):
        mine = [(run_id, source, m) for run_id, source, m in models if m.registered_model == name]
        highest = connection.execute(
            sqlalchemy.select(sqlalchemy.func.max(versions.c.version)).where(
                versions.c.name == name, versions.c.workspace == workspace
            )
        ).scalar()
        version_rows, tag_rows = [], []
        for number, (run_id, source, model) in enumerate(mine, start=(highest or 0) + 1):
            numbers[run_id] = number
            version_rows.append(
                {
                    "workspace": workspace,
                    "name": name,
                    "version": number,
                    "creation_time": now,
                    "last_updated_time": now,
                    "description": model.description,
                    "source": source,
                    "storage_location": source,
                    "run_id": run_id,
                }
            )
            tag_rows += [
                {
                    "workspace": workspace,
                    "name": name,
                    "version": number,
                    "key": k,
                    "value": v,
                }
                for k, v in {**model.tags, TAG.REQUEST: run_id}.items()
            ]
        connection.execute(versions.insert(), version_rows)
        if tag_rows:
            connection.execute(SqlModelVersionTag.__table__.insert(), tag_rows)
        updated = connection.execute(
            registered.update()
            .where(registered.c.name == name, registered.c.workspace == workspace)
            .values(last_updated_time=now)
        )
        if updated.rowcount != 1:  # deleted meanwhile: the whole transaction is undone
            from mlflow.exceptions import MlflowException

            raise MlflowException(
                f"Registered Model with name={name} not found",
                error_code="RESOURCE_DOES_NOT_EXIST",
            )
    return numbers
