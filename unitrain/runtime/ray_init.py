"""How a process starts or joins Ray: the arguments of ``ray.init``."""

from __future__ import annotations

from typing import Any

from unitrain.runtime.worker_env import public_environment
from unitrain.settings import ray_auth_environment, settings

__all__ = ["ray_init_kwargs"]


def ray_init_kwargs(*, local: bool = False) -> dict[str, Any]:
    """Arguments for ``ray.init``: to start a local cluster (``local``), else to join one."""
    config = settings()
    kwargs: dict[str, Any] = {"namespace": "unitrain", "log_to_driver": True}
    if local:
        ray_auth_environment(create=True)  # the cluster starts with this token
        kwargs["address"] = "local"  # a new cluster, never another one found running
        # Jobs reach the cluster through its address; its dashboard would only
        # slow the start. UNITRAIN_RAY_DASHBOARD=1 turns it on.
        kwargs["include_dashboard"] = config.ray_dashboard
        kwargs["num_cpus"] = config.local_cpus()
    else:
        kwargs["runtime_env"] = {"env_vars": public_environment()}
    return kwargs
