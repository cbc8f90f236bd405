"""Pre-flight check of per-trial resources against the Ray cluster, so nothing waits forever."""

from __future__ import annotations

from unitrain._compat import local_gpu_count
from unitrain.errors import JobValidationError, UnitrainError
from unitrain.settings import settings

__all__ = ["check_trial_resources", "check_local_machine"]


def check_trial_resources(num_cpus: float, num_gpus: float) -> None:
    """Raise unless at least one alive node can hold one trial."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(n.get("CPU", 0) >= num_cpus and n.get("GPU", 0) >= num_gpus for n in nodes):
        return
    total_gpus = sum(n.get("GPU", 0) for n in nodes)
    largest_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    if num_gpus > 0 and total_gpus == 0:
        raise UnitrainError(
            f"num_gpus={num_gpus}: the Ray cluster has no GPU; remove num_gpus or point "
            "RAY_ADDRESS at a cluster with GPUs"
        )
    raise UnitrainError(
        f"one trial asks for num_cpus={num_cpus}, num_gpus={num_gpus}, but no node of the Ray "
        f"cluster has that much (largest node: {largest_cpus} CPUs; {total_gpus} GPUs in all)"
    )


def check_local_machine(num_cpus: float | None, num_gpus: float | None) -> None:
    """Before a local Ray is started: can this machine hold one trial at all?

    Lets ``unitrain run`` refuse a GPU job on a machine without a GPU in a
    second, instead of after starting a server and a cluster. Ray counts the
    machine's accelerators the same way when it starts.
    """
    cpus = float(settings().local_cpus())
    if num_cpus and num_cpus > cpus:
        raise JobValidationError(
            f"num_cpus={num_cpus}: this machine has {cpus:g} CPUs, and no RAY_ADDRESS names a "
            "larger cluster"
        )
    if num_gpus:
        try:
            gpus = local_gpu_count()
        except Exception:  # Ray's own check on the cluster still runs later
            return
        if gpus is not None and gpus < num_gpus:
            raise JobValidationError(
                f"num_gpus={num_gpus}: this machine has {gpus} GPUs, and no RAY_ADDRESS names a "
                "cluster with GPUs; remove num_gpus to train on the CPU"
            )
