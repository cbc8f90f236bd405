"""A plugin's log lines reach the flow run's log in Prefect (read back through its API).

The suite runs Prefect's loggers at WARNING (``tests/conftest.py``), so the
plugin logs its lines at WARNING here.
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.test_train_flow import run

pytestmark = pytest.mark.e2e


def flow_run_logs(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs: list = []
    with get_client(sync_client=True) as client:
        while True:  # a page at a time (the API's limit)
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
                offset=len(logs),
            )
            logs += page
            if len(page) < 200:
                break
    return [log.message for log in sorted(logs, key=lambda log: log.timestamp)]


def wait_for_logs(flow_run_id, wanted: int, timeout_s: float = 30.0) -> list[str]:
    """Prefect's API receives logs in batches, a moment after they are written."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        lines = flow_run_logs(flow_run_id)
        if sum("message " in line for line in lines) >= wanted or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_each_trial_s_lines_reach_prefect_with_its_id_in_order(flow_env):
    state = run(
        name=f"e2e-logs-{uuid.uuid4().hex[:6]}",
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"messages": 4, "message_level": "WARNING"},
        hyperparameters=[{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        tune_config={"metric": "score", "num_samples": 3, "max_concurrent_trials": 2},
    )
    assert state.is_completed(), state
    trials = [t["trial_id"] for t in state.result()["trial_models"]]
    lines = wait_for_logs(state.state_details.flow_run_id, 4 * len(trials))
    for trial_id in trials:
        mine = [line for line in lines if line.startswith(f"[trial {trial_id}] ")]
        said = [line.split("] ", 1)[1] for line in mine]
        assert said[:4] == [f"message {i} of 4" for i in range(1, 5)], mine
        # the plugin's own logger, at INFO, with the trial's ID too
        assert any(s.startswith("scored {") for s in said), mine


def test_a_trial_that_floods_is_cut_and_says_how_many_lines_it_dropped(flow_env):
    state = run(
        name=f"e2e-flood-{uuid.uuid4().hex[:6]}",
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"messages": 5000, "message_level": "WARNING"},
        hyperparameters=[{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        tune_config={"metric": "score", "num_samples": 1},
    )
    assert state.is_completed(), state
    lines = wait_for_logs(state.state_details.flow_run_id, 1)
    dropped = [line for line in lines if "log line(s) dropped" in line]
    assert dropped, lines[-5:]
    kept = [line for line in lines if line.startswith("[trial ") and "dropped" not in line]
    assert 100 <= len(kept) < 1000
    # 5000 messages and the plugin's own "scored" line: each kept or counted
    in_all = re.search(r"\((\d+) in all\)", dropped[-1])
    assert in_all and int(in_all.group(1)) + len(kept) == 5001, (dropped, len(kept))


def test_a_training_job_s_lines_reach_prefect(flow_env):
    state = run(
        name=f"e2e-train-logs-{uuid.uuid4().hex[:6]}",
        dataset=1,
        plugin="synthetic",
        hyperparameter={"messages": 3, "message_level": "WARNING"},
    )
    assert state.is_completed(), state
    lines = wait_for_logs(state.state_details.flow_run_id, 3)
    assert [line for line in lines if line.startswith("message ")] == [
        f"message {i} of 3" for i in range(1, 4)
    ]
    assert any(line.startswith("scored {") for line in lines)
