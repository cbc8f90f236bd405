"""A finished trial's MLflow run and model version, written to an SQLite store in one transaction.

Through MLflow's client, recording a short trial takes four calls (create the
run, log its metrics and parameters, end it, register its model) and about 47
SQL statements: each call opens a session, looks the experiment or the run up
again and turns what it wrote back into entities. In a search of many short
trials that is most of what the driver does (about 45 ms of CPU a trial here),
and it competes with Ray Tune's loop for the same interpreter.

For a store in an SQLite file (the default) this module writes the same rows
with a handful of ``INSERT`` statements in one transaction, through the table
definitions of the installed MLflow (so the columns and their defaults are
MLflow's own). A trial's run and its model version thus appear together or
not at all. What is written is read back by MLflow as if its client had
written it; ``tests/unit/test_sql_writes.py`` compares the two field by field.
Other stores (a tracking server, another database) keep going through the
client.

Marking a job's best model is written here too: through the client, each of
its calls first reads the whole registered model, every version of every job
(MLflow checks that the name is not a prompt's), so it grew slower with every
model ever registered.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BestMark", "FinishedRun", "ModelVersion", "SqlRunWriter", "writes_directly"]

_MLFLOW_RUN_NAME = "mlflow.runName"
_MLFLOW_USER = "mlflow.user"
_LARGEST_FLOAT = 1.7976931348623157e308  # what MLflow stores for an infinite metric


def writes_directly(tracking_uri: str) -> bool:
    """Whether runs in this store are written by :class:`SqlRunWriter`."""
    return tracking_uri.startswith("sqlite:///")


@dataclass(frozen=True)
class ModelVersion:
    """A model version to register with a run, in the same transaction."""

    registered_model: str
    #: where the model's files are (already copied into the run's artifacts)
    source: str
    description: str
    tags: dict[str, str]


@dataclass(frozen=True)
class FinishedRun:
    """A run written once, when it has ended: everything MLflow keeps of it."""

    run_id: str
    experiment_id: str
    artifact_uri: str
    name: str
    status: str
    start_ms: int
    end_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    #: (key, value, timestamp in ms, step), in the order they were logged
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    model: ModelVersion | None = None

    @staticmethod
    def new_run_id() -> str:
        return uuid.uuid4().hex  # as MLflow makes them

    @staticmethod
    def artifact_uri_of(experiment_location: str, run_id: str) -> str:
        from mlflow.utils.uri import append_to_uri_path

        return str(append_to_uri_path(experiment_location, run_id, "artifacts"))


@dataclass(frozen=True)
class BestMark:
    """One model version marked as its job's best: a tag on it (and on no other), and an alias."""

    registered_model: str
    version: int
    #: the tag that marks it (set to "true")
    tag: str
    #: versions that carry the tag now and lose it
    others: tuple[int, ...]
    alias: str


class SqlRunWriter:
    """Writes :class:`FinishedRun` s into one MLflow SQLite store."""

    def __init__(self, tracking_uri: str) -> None:
        if not writes_directly(tracking_uri):
            raise ValueError(f"not an SQLite store: {tracking_uri}")
        import sqlalchemy

        self.tracking_uri = tracking_uri
        # SQLite serialises writers; a commit waits up to 30 s for another's
        # (then the caller's retries take over, as for any call to the store).
        self._engine = sqlalchemy.create_engine(tracking_uri, connect_args={"timeout": 30})

    def write(self, run: FinishedRun) -> int | None:
        """Write the run (and its model version); return the version's number, if any."""
        return self.write_many([run])[0]

    def write_many(self, runs: Sequence[FinishedRun]) -> list[int | None]:
        """Write runs (and their model versions) in one transaction; return the versions.

        A statement per table for them all: a search's short trials, recorded a
        few at a time, cost the driver a fraction of what one transaction each did.
        """
        from mlflow.store.tracking.dbmodels.models import (
            SqlLatestMetric,
            SqlMetric,
            SqlParam,
            SqlRun,
            SqlTag,
        )

        if not runs:
            return []
        run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
        for run in runs:
            tags = dict(run.tags)
            tags.setdefault(_MLFLOW_RUN_NAME, run.name)
            run_rows.append(_run_row(run, tags))
            tag_rows += [{"key": k, "value": v, "run_uuid": run.run_id} for k, v in tags.items()]
            param_rows += [
                {"key": k, "value": v, "run_uuid": run.run_id} for k, v in run.params.items()
            ]
            metrics = _metric_rows(run.run_id, run.metrics)
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
            models = [(run.run_id, run.model) for run in runs if run.model is not None]
            versions = _add_model_versions(connection, models)
        return [versions.get(run.run_id) for run in runs]

    def mark_best(self, mark: BestMark) -> None:
        """Move the tag and point the alias at ``mark.version``, in one transaction."""
        import sqlalchemy
        from mlflow.store.model_registry.dbmodels.models import (
            SqlModelVersion,
            SqlModelVersionTag,
            SqlRegisteredModelAlias,
        )
        from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

        versions = SqlModelVersion.__table__
        tags = SqlModelVersionTag.__table__
        aliases = SqlRegisteredModelAlias.__table__
        this_model = (tags.c.name == mark.registered_model) & (
            tags.c.workspace == DEFAULT_WORKSPACE_NAME
        )
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
                    & (versions.c.workspace == DEFAULT_WORKSPACE_NAME)
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
            where = {"workspace": DEFAULT_WORKSPACE_NAME, "name": mark.registered_model}
            connection.execute(
                tags.insert(), {**where, "version": mark.version, "key": mark.tag, "value": "true"}
            )
            connection.execute(
                aliases.delete().where(
                    (aliases.c.name == mark.registered_model)
                    & (aliases.c.workspace == DEFAULT_WORKSPACE_NAME)
                    & (aliases.c.alias == mark.alias)
                )
            )
            connection.execute(
                aliases.insert(), {**where, "alias": mark.alias, "version": mark.version}
            )


def _run_row(run: FinishedRun, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "run_uuid": run.run_id,
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
        "artifact_uri": run.artifact_uri,
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
    connection: Any, models: Sequence[tuple[str, ModelVersion]]
) -> dict[str, int]:
    """Register each run's model as the next versions of its registered model; run -> version."""
    import sqlalchemy
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
    )
    from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

    versions = SqlModelVersion.__table__
    registered = SqlRegisteredModel.__table__
    now = int(time.time() * 1000)
    numbers: dict[str, int] = {}
    for name in dict.fromkeys(model.registered_model for _, model in models):
        mine = [(run_id, model) for run_id, model in models if model.registered_model == name]
        highest = connection.execute(
            sqlalchemy.select(sqlalchemy.func.max(versions.c.version)).where(
                versions.c.name == name, versions.c.workspace == DEFAULT_WORKSPACE_NAME
            )
        ).scalar()
        version_rows, tag_rows = [], []
        for number, (run_id, model) in enumerate(mine, start=(highest or 0) + 1):
            numbers[run_id] = number
            version_rows.append(
                {
                    "workspace": DEFAULT_WORKSPACE_NAME,
                    "name": name,
                    "version": number,
                    "creation_time": now,
                    "last_updated_time": now,
                    "description": model.description,
                    "source": model.source,
                    "storage_location": model.source,
                    "run_id": run_id,
                }
            )
            tag_rows += [
                {
                    "workspace": DEFAULT_WORKSPACE_NAME,
                    "name": name,
                    "version": number,
                    "key": k,
                    "value": v,
                }
                for k, v in model.tags.items()
            ]
        connection.execute(versions.insert(), version_rows)
        if tag_rows:
            connection.execute(SqlModelVersionTag.__table__.insert(), tag_rows)
        updated = connection.execute(
            registered.update()
            .where(registered.c.name == name, registered.c.workspace == DEFAULT_WORKSPACE_NAME)
            .values(last_updated_time=now)
        )
        if updated.rowcount != 1:  # deleted meanwhile: the whole transaction is undone
            from mlflow.exceptions import MlflowException

            raise MlflowException(
                f"Registered Model with name={name} not found",
                error_code="RESOURCE_DOES_NOT_EXIST",
            )
    return numbers
