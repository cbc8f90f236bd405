"""A Ray node that runs trials goes away: its trials run again on the node that is left."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.helpers import clean_environment

pytestmark = pytest.mark.faults


@pytest.mark.fault("the Ray node running the trials is removed")
def test_trials_of_a_lost_node_run_again_on_another(tmp_path: Path, report):
    script = Path(__file__).with_name("node_loss_job.py")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=clean_environment(tmp_path / "home"),
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    registered = outcome["registered_trials"]
    report.record(
        survived=True,
        lost=outcome["trials"] - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert sorted(registered) == sorted(set(registered)) and len(registered) == outcome["trials"]
    assert outcome["removed_node_ran_trials"]
    # every registered model was trained on the node that was left
    assert set(outcome["model_nodes"]) == {outcome["kept_node"]}
