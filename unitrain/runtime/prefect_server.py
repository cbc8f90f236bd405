"""The Prefect API a job reports to, and the flow runs it keeps.

Without ``PREFECT_API_URL``, Prefect would start a temporary server in every
process that talks to it, and the Ray workers' servers would fight over one
SQLite file (``database is locked``). So every process of a job is pointed at
one server: a configured one, the one ``unitrain serve`` runs, or this home's
local stack (:mod:`unitrain.runtime.local_stack`), started on first use and shared.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from unitrain._compat import drain_prefect_workers
from unitrain.runtime.local_stack import lease
from unitrain.runtime.served import served_api_url
from unitrain.settings import settings

__all__ = ["mark_crashed_runs", "prefect_api"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the API URL to use, with this process and its children pointed at it."""
    configured = settings().prefect_api_url
    if configured:
        yield configured
        return
    served = served_api_url()
    if served:
        with _pointed_at(served):
            yield served
        return
    with lease() as stack, _pointed_at(stack.api_url):
        try:
            yield stack.api_url
        finally:
            _flush_logs()


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
    """Send buffered logs and events, and stop their workers, before the job lets go.

    A worker left running would retry against a server that may stop.
    """
    try:
        drain_prefect_workers(timeout_s=10)
    except Exception as error:  # logs are best effort once the job is over
        log.debug("could not flush Prefect logs: %s", error)


def mark_crashed_runs(job: str, *, exclude: str | None) -> list[str]:
    """Mark ``train`` flow runs of ``job`` still RUNNING or PENDING as Crashed; return their IDs.

    Called while the job's name is held, so none of them can be alive: their
    process died without reporting.
    """
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
    from prefect.states import Crashed

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
        stale = [run for run in runs if str(run.id) != exclude]
        for run in stale:
            client.set_flow_run_state(
                run.id,
                Crashed(
                    message=f"the process running job {job!r} ended without reporting; "
                    "found when the job ran again"
                ),
                force=True,
            )
    return [str(run.id) for run in stale]
