"""Ray behind Prefect's task-runner interface: one cluster for the steps and the trials.

:class:`UnitrainTaskRunner` is ``prefect_ray.RayTaskRunner`` with its settings
read when a flow starts rather than when the module is imported: ``RAY_ADDRESS``
names a cluster (otherwise a local Ray is started and stopped with the flow),
and a remote cluster's workers get the variables that point them at the same
MLflow, Prefect and storage as the driver.
"""

from __future__ import annotations

from typing import Any

from prefect_ray import RayTaskRunner

from unitrain.settings import settings, worker_environment

__all__ = ["UnitrainTaskRunner", "ray_init_kwargs"]


def ray_init_kwargs() -> dict[str, Any]:
    """Arguments for ``ray.init`` on the current environment."""
    config = settings()
    kwargs: dict[str, Any] = {"namespace": "unitrain", "log_to_driver": True}
    if config.ray_address:
        kwargs["runtime_env"] = {"env_vars": worker_environment()}
    else:
        # A local cluster lives as long as one job; its dashboard would only
        # slow the start. UNITRAIN_RAY_DASHBOARD=1 turns it on.
        kwargs["include_dashboard"] = config.ray_dashboard
        if config.ray_num_cpus:
            kwargs["num_cpus"] = config.ray_num_cpus
    return kwargs


class UnitrainTaskRunner(RayTaskRunner):
    """A ``RayTaskRunner`` configured from the environment at flow start."""

    def __init__(self, address: str | None = None, init_kwargs: dict[str, Any] | None = None):
        super().__init__(address=address, init_kwargs=init_kwargs)
        self.address: str | None = address
        self._configured_kwargs = init_kwargs

    def duplicate(self) -> UnitrainTaskRunner:
        return type(self)(address=self.address, init_kwargs=self._configured_kwargs)

    def __enter__(self) -> UnitrainTaskRunner:
        if self._configured_kwargs is None:
            self.init_kwargs = ray_init_kwargs()
        if self.address is None:
            self.address = settings().ray_address
        super().__enter__()
        return self


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
    the kernel's out-of-memory killer, so the message says so.
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
    if "OutOfMemoryError" in names or "out of memory" in lowered or "oom" in lowered.split():
        return "worker died: out of memory (killed to protect the node)"
    if "NodeDiedError" in names or "node died" in lowered or "node has died" in lowered:
        return "worker died: its Ray node went away"
    if "sigkill" in lowered or "signal 9" in lowered or "killed" in lowered:
        return "worker died: killed by signal 9; out of memory?"
    if "exit code" in lowered or "exits unexpectedly" in lowered or "sigsegv" in lowered:
        return "worker died: its process exited unexpectedly (a crash in native code?)"
    return "worker died: its process ended unexpectedly; out of memory?"


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
