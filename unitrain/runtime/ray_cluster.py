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
