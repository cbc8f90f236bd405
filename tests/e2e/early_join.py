"""A flow on a Ray joined early (``ray_join.connect_early``), as ``unitrain run`` joins it
(run by test_cli_run.py in a process of its own).

It prints, as JSON: the process IDs of the driver, of the worker readied for the
first step and of the worker the step ran on, whether the process is still in
Ray after the flow, and whether its lease of the local stack is still held.

Usage: python early_join.py HOME RECORD
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["UNITRAIN_HOME"] = sys.argv[1]
for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
    os.environ.pop(name, None)


def record(path: str) -> None:
    """In the readied worker: say which process it is."""
    Path(path).write_text(str(os.getpid()))


def main() -> None:
    from unitrain.settings import configure_environment

    configure_environment()
    from unitrain.runtime import local_stack, ray_join

    with local_stack.lease():  # up, as for a job: it is the stack a job joins early
        pass
    # The worker imports this module by name: the driver's sys.path[0] is this folder.
    ray_join.connect_early("early_join:record", sys.argv[2])

    import ray
    from prefect import flow, task

    from unitrain.runtime.prefect_server import prefect_api
    from unitrain.runtime.ray_cluster import UnitrainTaskRunner
    from unitrain.runtime.stack_files import clients_folder

    @task
    def where() -> int:
        return os.getpid()

    @flow(task_runner=UnitrainTaskRunner())
    def probe() -> int:
        return where.submit().result()

    with prefect_api():
        step = probe()
    print(json.dumps({
        "driver": os.getpid(),
        "readied": int(Path(sys.argv[2]).read_text()),
        "step": step,
        "still_joined": ray.is_initialized(),
        "lease_held": (clients_folder() / str(os.getpid())).exists(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
