"""Pre-flight check of per-trial resources against the Ray cluster, so nothing waits forever."""

from __future__ import annotations

from unitrain.errors import UnitrainError

__all__ = ["check_trial_resources"]


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
