"""Trials on a node that is not the driver's still get their models registered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A two-node Ray cluster of its own: a scale test, so `make slow`.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_trials_on_another_node_are_registered(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_"))}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    script = Path(__file__).with_name("multinode_job.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["model_ids"]) == 3
    assert set(report["trial_nodes"]) == {report["worker"]} != {report["head"]}
