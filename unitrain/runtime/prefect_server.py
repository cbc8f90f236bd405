"""The Prefect API a job reports to: a configured server, or one we start for the job.

Without ``PREFECT_API_URL`` Prefect would start a temporary server in every
process that talks to it, and the Ray workers' servers would fight over one
SQLite file (``database is locked``). So the driver starts one server on
loopback, backed by ``$UNITRAIN_HOME/prefect``, points every process at it,
and stops it when the job ends. A server left running by ``unitrain serve``
is reused instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

from unitrain.settings import settings

__all__ = ["prefect_api", "running_job_runs", "served_api_url", "server_file"]

log = logging.getLogger(__name__)


def server_file() -> Path:
    return settings().prefect_home / "server.json"


def _healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def served_api_url() -> str | None:
    """The URL of a server started by ``unitrain serve`` for this home, if it is up."""
    path = server_file()
    if not path.exists():
        return None
    try:
        url = json.loads(path.read_text())["api_url"]
    except (ValueError, KeyError):
        return None
    return url if _healthy(url) else None


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the API URL to use; start (and finally stop) a server if there is none."""
    configured = settings().prefect_api_url
    if configured:
        yield configured
        return
    served = served_api_url()
    if served:
        with _pointed_at(served):
            yield served
        return
    from unitrain._compat import subprocess_prefect_server

    server = subprocess_prefect_server()
    server.start(timeout=120)
    try:
        with _pointed_at(server.api_url):
            yield server.api_url
    finally:
        _flush_logs()
        server.stop()


@contextlib.contextmanager
def _pointed_at(api_url: str) -> Iterator[None]:
    """Point this process (Prefect read its settings at import) and its children at ``api_url``."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = api_url
    try:
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def _flush_logs() -> None:
    """Send buffered logs and events, and stop their workers, before the server stops.

    A worker left running would retry against the stopped server at exit.
    """
    from unitrain._compat import drain_prefect_workers

    try:
        drain_prefect_workers(timeout_s=10)
    except Exception as error:  # logs are best effort once the job is over
        log.debug("could not flush Prefect logs: %s", error)


def running_job_runs(job: str, *, exclude: str | None = None) -> list[str]:
    """Names of the ``train`` flow runs called ``job`` that are pending or running now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[job]),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                ),
            ),
        )
    return [str(run.id) for run in runs if str(run.id) != exclude]
