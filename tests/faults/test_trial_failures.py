"""Trials that die, hang or run out of time: classified, retried on request, never fatal
while another trial produced a model; a training step whose worker dies runs once."""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import Home, tuning_job

pytestmark = pytest.mark.faults


def grid_job(name: str, flag: str, **config) -> dict:
    job = tuning_job(name, trials=4, work_s=0.5, **config)
    job["hyperparameters"] = [
        {"name": flag, "type": "grid_search", "options": [False, True]},
        {"name": "x", "type": "grid_search", "options": [0.2, 0.4]},
    ]
    return job


@pytest.mark.fault("a trial's process killed (SIGKILL), no retries")
def test_a_killed_trial_says_its_worker_died_and_the_others_finish(shared_home: Home, report):
    job = shared_home.run(grid_job("fault-trial-killed", "kill_self"))
    assert job.process.returncode == 0, job.stderr[-3000:]
    result = job.result()
    assert len(result["trial_models"]) == 2
    assert all(not m["config"]["kill_self"] for m in result["trial_models"])
    # one line for both trials (the reasons are grouped)
    assert "2 trial(s) without a model: it failed: worker died: killed by a signal" in job.stderr
    registered = shared_home.registered_trials("fault-trial-killed")
    report.record(survived=True, lost=2 - len(registered), duplicated=0)
    assert "RUNNING" not in shared_home.run_statuses("fault-trial-killed")


@pytest.mark.fault("a trial's process killed once, max_failures=1")
def test_a_retried_trial_finishes_on_its_second_attempt(shared_home: Home, report):
    job = grid_job("fault-trial-retried", "kill_once", max_failures=1)
    done = shared_home.run(job)
    assert done.process.returncode == 0, done.stderr[-3000:]
    models = done.result()["trial_models"]
    assert len(models) == 4
    registered = shared_home.registered_trials("fault-trial-retried")
    report.record(
        survived=True,
        lost=4 - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert sorted(registered) == sorted(set(registered)) and len(registered) == 4
    # the killed attempts' runs are KILLED, the second attempts' FINISHED
    statuses = shared_home.run_statuses("fault-trial-retried")
    assert statuses.count("FINISHED") == 5 and "RUNNING" not in statuses  # 4 trials + the job


@pytest.mark.fault("a plugin that hangs, trial_timeout_s=4")
def test_a_hanging_trial_times_out(shared_home: Home, report):
    job = tuning_job("fault-hang", trials=2, work_s=0.1, trial_timeout_s=4, max_concurrent_trials=2)
    job["hyperparameters"] = [{"name": "work_s", "type": "grid_search", "options": [0.1, 600]}]
    job["hyperparameter"] = {}
    started = time.monotonic()
    done = shared_home.run(job)
    assert done.process.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 240
    assert "timed out after 4 s (tune_config.trial_timeout_s)" in done.stderr
    assert len(done.result()["trial_models"]) == 1
    report.record(survived=True, lost=0, duplicated=0)


@pytest.mark.fault("a search longer than time_budget_s")
def test_the_time_budget_stops_the_search_and_keeps_what_finished(shared_home: Home, report):
    job = tuning_job("fault-budget", trials=40, work_s=2, time_budget_s=10, max_concurrent_trials=1)
    done = shared_home.run(job)
    assert done.process.returncode == 0, done.stderr[-3000:]
    models = done.result()["trial_models"]
    assert 1 <= len(models) < 40
    registered = shared_home.registered_trials("fault-budget")
    assert sorted(registered) == sorted(m["trial_id"] for m in models)
    report.record(survived=True, lost=0, duplicated=0)


@pytest.mark.fault("the training step's process killed (SIGKILL)")
def test_a_training_step_whose_worker_dies_runs_once(shared_home: Home, report):
    job = {
        "name": "fault-train-killed",
        "dataset": 1,
        "plugin": "synthetic",
        "hyperparameter": {"kill_self": True},
    }
    done = shared_home.run(job)
    assert done.process.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "error: a step of the job failed: worker died: killed by a signal; out of memory?"
    ), last
    # one run, not retried, and not left RUNNING
    assert shared_home.run_statuses("fault-train-killed") == ["FAILED"]
    assert shared_home.registered_trials("fault-train-killed") == []
    report.record(survived=True, lost=0, duplicated=0)
