"""How a process joins Ray for a flow, and how ``unitrain run`` joins it early.

A job's Ray workers are its own: the first step on a new worker waits for the
worker to start and import the step (seconds). :func:`connect_early` joins Ray
in a thread, exactly as the flow's task runner would, and readies a worker of
the job while the job's own modules still import; the task runner then takes
that connection over (:func:`take_early_connection`).

Kept apart from :mod:`unitrain.runtime.ray_cluster`, which imports Prefect:
the command line imports this module whatever it runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from unitrain.runtime import local_stack
from unitrain.runtime.ray_init import ray_init_kwargs
from unitrain.runtime.worker_env import load_worker_secrets, worker_secrets
from unitrain.settings import settings

__all__ = [
    "EarlyConnection",
    "abandon_early_connection",
    "connect_early",
    "join_address",
    "join_kwargs",
    "take_early_connection",
]

log = logging.getLogger(__name__)


def join_kwargs(leases: contextlib.ExitStack) -> dict[str, Any]:
    """The arguments of ``ray.init`` for a flow, the secrets file held while ``leases`` are."""
    kwargs = ray_init_kwargs()
    # Secrets reach the workers in a file, never in Ray's runtime environment.
    kwargs["runtime_env"]["env_vars"].update(leases.enter_context(worker_secrets()))
    return kwargs


def join_address(leases: contextlib.ExitStack) -> str:
    """RAY_ADDRESS, else the address of the home's local Ray, held while ``leases`` are."""
    return settings().ray_address or leases.enter_context(local_stack.lease()).ray_address


@dataclass
class EarlyConnection:
    """Ray joined by this process, with what the join holds (the lease, the secrets file)."""

    address: str
    init_kwargs: dict[str, Any]
    leases: contextlib.ExitStack
    #: the task readying a worker (a Ray ObjectRef), if one was asked for
    readying: Any = None


class _EarlyJoin(threading.Thread):
    """Joins Ray as the flow's task runner would, then readies a worker (see connect_early)."""

    def __init__(self, prepare: tuple[str, ...]) -> None:
        super().__init__(name="unitrain-connect-early", daemon=True)
        self.prepare = prepare
        self.connection: EarlyConnection | None = None
        #: set once the worker is asked for, or the join has given up
        self.asked = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False

    def run(self) -> None:
        try:
            self._join()
        finally:
            self.asked.set()

    def _join(self) -> None:
        if not settings().ray_address and local_stack.running() is None:
            return  # a stack still starting is the flow's to wait for (or a refusal's to stop)
        import ray

        leases = contextlib.ExitStack()
        try:
            init_kwargs = join_kwargs(leases)
            address = join_address(leases)
            with _quietly():
                ray.init(address, **init_kwargs)
        except BaseException as error:  # noqa: BLE001 (the flow joins by itself, and reports it)
            log.debug("joining Ray early failed: %s", error)
            leases.close()
            return
        connection = EarlyConnection(address, init_kwargs, leases)
        if self.prepare:
            with contextlib.suppress(Exception):  # a worker that is not ready just starts later
                readying = ray.remote(num_cpus=0, max_retries=0)(_prepare_worker)
                connection.readying = readying.remote(*self.prepare)
        with self._lock:
            if not self._abandoned:
                self.connection = connection
                return
        _leave(connection)

    def abandon(self) -> None:
        """Leave Ray now if joined, else as soon as the join ends (without waiting for it)."""
        with self._lock:
            self._abandoned = True
            connection, self.connection = self.connection, None
        if connection is not None:
            _leave(connection)


def _leave(connection: EarlyConnection) -> None:
    import ray

    ray.shutdown()
    connection.leases.close()


_EARLY: list[_EarlyJoin] = []

#: how long the caller of connect_early waits for the worker to be asked for
_ASKING_WAIT_S = 3.0


def connect_early(prepare: str | None = None, *args: Any) -> None:
    """Join Ray in the background; the next flow's task runner takes the connection over.

    ``prepare`` (``"module:function"``, called with ``args``) readies a new worker
    of the job for its first step, e.g. imports the step and the plugin: that
    worker then runs the step. Nothing happens when this process is in Ray already.

    With ``prepare``, this returns once the worker is asked for (at most a few
    seconds): the worker's start and imports are the first step's critical path,
    and imports in this thread meanwhile would only slow the join's (one
    interpreter lock) without ending any sooner.
    """
    ray = sys.modules.get("ray")  # not imported here: the thread imports it
    if _EARLY or (ray is not None and ray.is_initialized()):
        return
    join = _EarlyJoin((prepare, *args) if prepare else ())
    _EARLY.append(join)
    join.start()
    if prepare:
        join.asked.wait(_ASKING_WAIT_S)


def take_early_connection() -> EarlyConnection | None:
    """The connection :func:`connect_early` made (waiting for it), or None; it is the
    caller's from here: ``ray.shutdown()``, then close its ``leases``."""
    if not _EARLY:
        return None
    join = _EARLY.pop()
    join.join()
    return join.connection


def abandon_early_connection() -> None:
    """Leave the Ray that :func:`connect_early` joined, if no flow took it over; a join
    still under way is left when it ends, not waited for (a refused job exits at once)."""
    if _EARLY:
        _EARLY.pop().abandon()


def _prepare_worker(target: str, *args: Any) -> None:
    """In a new Ray worker of the job: call ``target`` (``"module:function"``) with ``args``."""
    with contextlib.suppress(Exception):  # the step itself reports what fails here
        load_worker_secrets()
        module, _, function = target.partition(":")
        getattr(importlib.import_module(module), function)(*args)


class _EarlyJoinNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return (
            record.levelno > logging.INFO
            and "SIGTERM handler is not set" not in record.getMessage()
        )


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """Without Ray's lines about the join: they would reach the terminal before the job's
    view takes the libraries' output, and its warning that it set no SIGTERM handler
    is moot (the flow installs its own, see interrupts, when it takes the connection over)."""
    logger = logging.getLogger("ray._private.worker")
    quiet = _EarlyJoinNoise()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
