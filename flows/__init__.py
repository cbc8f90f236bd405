"""The Prefect flows: the DAG of a train job and nothing else."""

from unitrain.settings import enable_local_ray_auth

# A deployment's flow run starts here, in a fresh process: Ray reads its token
# settings when it is first imported (below, through prefect_ray), so point it
# at the home's local-cluster token first. Values already set are kept.
enable_local_ray_auth()

from unitrain.flows.train import train  # noqa: E402

__all__ = ["train"]
