"""The Prefect flows: the DAG of a train job and nothing else."""

from unitrain.flows.train import train

__all__ = ["train"]
