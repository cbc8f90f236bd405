"""Ray behind Prefect's task-runner interface: one cluster for the steps and the trials.

:class:`UnitrainTaskRunner` is ``prefect_ray.RayTaskRunner`` with its settings
read when a flow starts rather than when the module is imported. ``RAY_ADDRESS``
names a cluster to join; without it, a flow joins the home's local Ray (see
:mod:`unitrain.runtime.local_stack`), started on first use and shared by jobs.
A flow's workers get, through its runtime environment, the variables that
point them at the same MLflow, Prefect and storage as the flow.
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
from unitrain.runtime import interrupts, local_stack
from unitrain.runtime.failures import worker_death
from unitrain.runtime.processes import is_alive
from unitrain.runtime.ray_init import ray_init_kwargs
from unitrain.runtime.worker_env import load_worker_secrets, worker_secrets
from unitrain.settings import settings

__all__ = ["UnitrainTaskRunner", "reap_orphaned_ray", "result_of", "worker_death"]


def _send_prefect_buffers() -> None:
    # The local Ray outlives a job, and Ray stops a finished job's workers
    # without letting Python exit cleanly: what Prefect buffered in them would
    # be lost.
    with contextlib.suppress(Exception):
        drain_prefect_workers(timeout_s=10)


class UnitrainTaskRunner(RayTaskRunner):
    """A ``RayTaskRunner`` configured from the environment at flow start."""

    def __init__(self, address: str | None = None, init_kwargs: dict[str, Any] | None = None):
        super().__init__(address=address, init_kwargs=init_kwargs)
        self.address: str | None = address
        self._configured_kwargs = init_kwargs
        self._leases = contextlib.ExitStack()

    def duplicate(self) -> UnitrainTaskRunner:
        return type(self)(address=self.address, init_kwargs=self._configured_kwargs)

    def __enter__(self) -> UnitrainTaskRunner:
        import ray

        install_flow_patches()
        if self._configured_kwargs is None:
            self.init_kwargs = ray_init_kwargs()
            # Secrets reach the workers in a file, never in Ray's runtime environment.
            pointer = self._leases.enter_context(worker_secrets())
            self.init_kwargs["runtime_env"]["env_vars"].update(pointer)
        if self.address is None and not ray.is_initialized():
            self.address = settings().ray_address or self._local_ray()
        super().__enter__()
        # ray.init made SIGTERM a sys.exit; make it an interrupt (see interrupts).
        interrupts.install()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            super().__exit__(*exc_info)
        finally:
            self._leases.close()

    # A task in a Ray worker reads the job's secrets first, and sends what
    # Prefect buffered before it returns.
    _run_prefect_task = run_prefect_task_between(load_worker_secrets, _send_prefect_buffers)

    def _local_ray(self) -> str:
        """The address of the home's local Ray, held for this flow run."""
        stack = self._leases.enter_context(local_stack.lease())
        return stack.ray_address


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
