"""A tuning job on a Ray cluster of two nodes, its trials forced onto the node that is
not the driver's (run by test_multinode.py in a process of its own).

Usage: python multinode_job.py HOME
"""

from __future__ import annotations

import json
import os
import sys

os.environ["UNITRAIN_HOME"] = sys.argv[1]
for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
    os.environ.pop(name, None)

from unitrain.settings import configure_environment  # noqa: E402

configure_environment()


def main() -> None:
    from ray.cluster_utils import Cluster

    # The head (where the flow's driver connects) has 1 CPU; trials ask for 2,
    # so only the second node can run them.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    try:
        from unitrain.runtime.prefect_server import prefect_api

        with prefect_api():
            from unitrain.flows.train import train

            result = train(
                name="multinode-tuning",
                dataset=1,
                is_tune=True,
                plugin="synthetic",
                num_cpus=2,
                hyperparameters=[{"name": "x", "type": "uniform", "min": 0, "max": 1}],
                tune_config={"metric": "score", "mode": "max", "num_samples": 3},
            )
        from mlflow import MlflowClient

        from unitrain.stores.mlflow_store import TAG
        from unitrain.stores.registry import ModelRegistry

        registry = ModelRegistry()
        nodes = [
            MlflowClient().get_run(registry.get(m["model_id"]).run_id).data.tags[TAG.NODE]
            for m in result["trial_models"]
        ]
        print(
            json.dumps(
                {
                    "head": cluster.head_node.node_id,
                    "worker": worker.node_id,
                    "trial_nodes": nodes,
                    "model_ids": [m["model_id"] for m in result["trial_models"]],
                }
            )
        )
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
