"""A tuning job on two Ray nodes; the node running its trials is removed mid-search
(run by test_node_loss.py in a process of its own). Prints a JSON report."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from unitrain.settings import configure_environment

configure_environment()
NAME = "node-loss"
TRIALS = 4


def main() -> None:
    from ray.cluster_utils import Cluster

    # The head (the flow's driver) has 1 CPU; trials ask for 2, so only the two
    # other nodes can run them, one trial at a time each.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    first = cluster.add_node(num_cpus=2)
    second = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    os.environ["RAY_ADDRESS"] = cluster.address
    home = Path(os.environ["UNITRAIN_HOME"])
    removed: dict[str, str] = {}

    def remove_a_busy_node() -> None:
        trials = home / "runs" / NAME / "trials"
        while not removed:
            for path in trials.glob("*/trial.json"):
                result = json.loads(path.read_text() or "{}")
                if result.get("status") == "RUNNING":
                    busy = result.get("node", "")
                    node = first if first.node_id == busy else second
                    if busy in (first.node_id, second.node_id):
                        cluster.remove_node(node)
                        removed["node"] = node.node_id
                        return
            time.sleep(0.2)

    remover = threading.Thread(target=remove_a_busy_node, daemon=True)
    remover.start()
    try:
        from unitrain.runtime.prefect_server import prefect_api

        with prefect_api():
            from unitrain.flows.train import train

            result = train(
                name=NAME,
                dataset=1,
                is_tune=True,
                plugin="synthetic",
                num_cpus=2,
                hyperparameter={"work_s": 4},
                hyperparameters=[{"name": "x", "type": "uniform", "min": 0, "max": 1}],
                tune_config={
                    "metric": "score",
                    "mode": "max",
                    "num_samples": TRIALS,
                    "max_failures": 2,
                },
            )
        from mlflow import MlflowClient

        from unitrain.stores.mlflow_store import TAG
        from unitrain.stores.registry import ModelRegistry

        registry = ModelRegistry()
        models = [registry.get(m["model_id"]) for m in result["trial_models"]]
        kept = second.node_id if removed.get("node") == first.node_id else first.node_id
        print(
            json.dumps(
                {
                    "trials": TRIALS,
                    "registered_trials": [r.trial_id for r in registry.models(job=NAME)],
                    "removed_node_ran_trials": bool(removed),
                    "kept_node": kept,
                    "model_nodes": [
                        MlflowClient().get_run(m.run_id).data.tags[TAG.NODE] for m in models
                    ],
                }
            )
        )
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
