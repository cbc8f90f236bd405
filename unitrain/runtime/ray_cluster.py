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
from typing import Any

from prefect_ray import RayTaskRunner

from unitrain.runtime import interrupts
from unitrain.runtime.processes import is_alive
from unitrain.runtime.worker_env import load_worker_secrets, public_environment, worker_secrets
from unitrain.settings import settings

__all__ = ["UnitrainTaskRunner", "ray_init_kwargs", "result_of", "worker_death"]


def ray_init_kwargs(*, local: bool = False) -> dict[str, Any]:
    """Arguments for ``ray.init``: to start a local cluster (``local``), else to join one."""
    config = settings()
    kwargs: dict[str, Any] = {"namespace": "unitrain", "log_to_driver": True}
    if local:
        from unitrain.runtime.local_stack import ray_auth_environment

        ray_auth_environment(create=True)  # the cluster starts with this token
        kwargs["address"] = "local"  # a new cluster, never another one found running
        # Jobs reach the cluster through its address; its dashboard would only
        # slow the start. UNITRAIN_RAY_DASHBOARD=1 turns it on.
        kwargs["include_dashboard"] = config.ray_dashboard
        kwargs["num_cpus"] = config.local_cpus()
    else:
        kwargs["runtime_env"] = {"env_vars": public_environment()}
    return kwargs


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

    @staticmethod
    def _run_prefect_task(*args: Any, **kwargs: Any) -> Any:
        """Run one task in a Ray worker, then send its logs and events before returning.

        The local Ray outlives a job, and Ray stops a finished job's workers
        without letting Python exit cleanly: what Prefect buffered in them would
        be lost.
        """
        load_worker_secrets()
        try:
            return RayTaskRunner._run_prefect_task(*args, **kwargs)
        finally:
            from unitrain._compat import drain_prefect_workers

            with contextlib.suppress(Exception):
                drain_prefect_workers(timeout_s=10)

    def _local_ray(self) -> str:
        """The address of the home's local Ray, held for this flow run."""
        from unitrain.runtime import local_stack

        stack = self._leases.enter_context(local_stack.lease())
        return stack.ray_address


# Ray's errors for a process (or node) that went away, rather than code that raised.
_DEATHS = {
    "WorkerCrashedError",
    "ActorDiedError",
    "RayActorError",
    "ActorUnavailableError",
    "NodeDiedError",
    "OutOfMemoryError",
    "LocalRayletDiedError",
}


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def worker_death(error: BaseException | str | None) -> str:
    """What is known of why a Ray worker died ('' when ``error`` is not a worker's death).

    Ray rarely knows the signal; a process killed with SIGKILL is most often
    the kernel's out-of-memory killer, so the message asks.
    """
    if error is None:
        return ""
    if isinstance(error, str):
        text, names = error, {n for n in _DEATHS if n in error}
    else:
        chain = _chain(error)
        names = {type(e).__name__ for e in chain} & _DEATHS
        text = " ".join(str(e) for e in chain)
    if not names and "worker died" not in text.lower() and "actor died" not in text.lower():
        return ""
    lowered = text.lower()
    if "OutOfMemoryError" in names or "running low on memory" in lowered:
        return "worker died: out of memory (Ray killed it to protect the node)"
    if "NodeDiedError" in names or "node died" in lowered or "node has died" in lowered:
        return "worker died: its Ray node went away"
    if "sigsegv" in lowered and "received" in lowered:
        return "worker died: it crashed (SIGSEGV, a fault in native code)"
    # Ray sees only that the process vanished ("connection error ... End of
    # file"); on Linux that is almost always a SIGKILL, most often the kernel's
    # out-of-memory killer.
    return "worker died: killed by a signal; out of memory?"


def result_of(future: Any) -> Any:
    """A step's result; a step whose Ray worker died fails with what is known of why."""
    try:
        return future.result()
    except Exception as error:
        death = worker_death(error)
        if death:
            from unitrain.errors import UnitrainError

            raise UnitrainError(f"a step of the job failed: {death}") from None
        raise


def reap_orphaned_ray() -> list[int]:
    """Kill Ray agents whose raylet is gone; return their process IDs.

    A job killed with SIGKILL takes its local Ray's raylet with it, but Ray's
    dashboard and runtime-env agents live on, serving ports, with no parent.
    They carry their raylet's process ID in their environment; this finds
    those whose raylet is dead (Linux ``/proc``; elsewhere it does nothing).
    """
    import signal
    from pathlib import Path

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
