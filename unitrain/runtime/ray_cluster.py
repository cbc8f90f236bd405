"""Ray behind Prefect's task-runner interface: one cluster for the steps and the trials.

:class:`UnitrainTaskRunner` is ``prefect_ray.RayTaskRunner`` with its settings
read when a flow starts rather than when the module is imported. ``RAY_ADDRESS``
names a cluster to join; without it, a flow joins the home's local Ray (see
:mod:`unitrain.runtime.local_stack`), started on first use and shared by jobs.
A flow's workers get, through its runtime environment, the variables that
point them at the same MLflow, Prefect and storage as the flow.

When this process joined Ray already (``unitrain run`` does it early, see
:mod:`unitrain.runtime.ray_join`), the task runner takes that connection over.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from prefect_ray import RayTaskRunner

from unitrain._compat import drain_prefect_workers, install_flow_patches, run_prefect_task_between
from unitrain.errors import UnitrainError
from unitrain.runtime import interrupts
from unitrain.runtime.failures import worker_death
from unitrain.runtime.processes import is_alive
from unitrain.runtime.ray_join import join_address, join_kwargs, take_early_connection
from unitrain.runtime.worker_env import load_worker_secrets

__all__ = ["UnitrainTaskRunner", "reap_orphaned_ray", "result_of", "worker_death"]


def _send_prefect_buffers() -> None:
    # The local Ray outlives a job, and Ray stops a finished job's workers
    # without letting Python exit cleanly: what Prefect buffered in them would
    # be lost.
    with contextlib.suppress(Exception):
        drain_prefect_workers(timeout_s=10)


#: how long the first step waits for the worker readied for it (see ray_join)
_READYING_WAIT_S = 30.0


class UnitrainTaskRunner(RayTaskRunner):
    """A ``RayTaskRunner`` configured from the environment at flow start."""

    def __init__(self, address: str | None = None, init_kwargs: dict[str, Any] | None = None):
        super().__init__(address=address, init_kwargs=init_kwargs)
        self.address: str | None = address
        self._configured_kwargs = init_kwargs
        self._leases = contextlib.ExitStack()
        self._adopted = False
        self._readying: Any = None

    def duplicate(self) -> UnitrainTaskRunner:
        return type(self)(address=self.address, init_kwargs=self._configured_kwargs)

    def __enter__(self) -> UnitrainTaskRunner:
        import ray

        install_flow_patches()
        early = take_early_connection() if self._configured_kwargs is None else None
        if early is not None:  # joined by this process already (connect_early): taken over
            self.address, self.init_kwargs = early.address, early.init_kwargs
            self._leases.enter_context(early.leases)
            self._adopted = True
            self._readying = early.readying
            self.logger.info(f"Using the Ray instance at {self.address}, joined while planning")
        else:
            if self._configured_kwargs is None:
                self.init_kwargs = join_kwargs(self._leases)
            if self.address is None and not ray.is_initialized():
                self.address = join_address(self._leases)
        super().__enter__()
        # ray.init made SIGTERM a sys.exit; make it an interrupt (see interrupts).
        interrupts.install()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            super().__exit__(*exc_info)
            if self._adopted:  # Ray was joined for this runner: leave it as its own join would
                import ray

                ray.shutdown()
        finally:
            self._leases.close()

    def submit(
        self, task: Any, parameters: Any, wait_for: Any = None, dependencies: Any = None
    ) -> Any:
        if self._readying is not None:
            # A step sent while its worker is still being readied would start a new
            # worker, and wait longer than for the one that is almost ready.
            import ray

            ray.wait([self._readying], timeout=_READYING_WAIT_S)
            self._readying = None
        return super().submit(task, parameters, wait_for, dependencies)

    # A task in a Ray worker reads the job's secrets first, and sends what
    # Prefect buffered before it returns.
    _run_prefect_task = run_prefect_task_between(load_worker_secrets, _send_prefect_buffers)


def result_of(future: Any) -> Any:
    """A step's result; a step whose Ray worker died fails with what is known of why."""
    try:
        return future.result()
    except Exception as error:
        death = worker_death(error)
        if death:
            raise UnitrainError(f"a step of the job failed: {death}") from None
        raise


def reap_orphaned_ray() -> list[int]:
    """Kill Ray agents whose raylet is gone; return their process IDs.

    A job killed with SIGKILL takes its local Ray's raylet with it, but Ray's
    dashboard and runtime-env agents live on, serving ports, with no parent.
    They carry their raylet's process ID in their environment; this finds
    those whose raylet is dead (Linux ``/proc``; elsewhere it does nothing).
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    killed = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        raylet = next((v[15:] for v in variables if v.startswith(b"RAY_RAYLET_PID=")), b"")
        if not raylet.isdigit() or is_alive(int(raylet)):
            continue
        try:
            os.kill(int(entry.name), signal.SIGKILL)
            killed.append(int(entry.name))
        except OSError:
            pass
    return killed
