"""Which writer a store gets: SQLite's fast path where it is safe, else MLflow's client.

See ``unitrain.stores.writes`` for what is written, ``unitrain.stores.client_writer``
and ``unitrain.stores.sqlite_writer`` for the two writers.
"""

from __future__ import annotations

import logging

from unitrain.stores.client_writer import ClientWriter
from unitrain.stores.mlflow_store import MlflowStore, is_local, sqlite_path
from unitrain.stores.sqlite_writer import SqliteWriter, unverified_reason
from unitrain.stores.writes import RunWriter

__all__ = ["writer_for"]

log = logging.getLogger(__name__)

_CHOSEN: dict[str, RunWriter] = {}  # tracking URI -> its writer


def writer_for(store: MlflowStore) -> RunWriter:
    """The writer of ``store``, chosen once per process: SQLite's where it is safe, else the
    client's (with one log line saying why, when the store is SQLite)."""
    chosen = _CHOSEN.get(store.tracking_uri)
    if chosen is not None:
        return chosen
    writer: RunWriter = ClientWriter(store)
    if sqlite_path(store.tracking_uri) is not None:
        reason = unverified_reason()
        if not reason and not is_local(store.artifact_location()):
            reason = f"its artifacts are not in a local folder ({store.artifact_location()})"
        if reason:
            log.info("MLflow runs are written through MLflow's client: %s", reason)
        else:
            writer = SqliteWriter(store)
    _CHOSEN[store.tracking_uri] = writer
    return writer
