"""A job killed, interrupted or terminated: its name is free, nothing stays RUNNING, and
running it again resumes it: finished trials are kept, the others run, nothing twice."""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import Home, ray_processes_of, tuning_job, wait_for

pytestmark = pytest.mark.faults
TRIALS = 6


def resume_and_check(home: Home, job: dict, finished_before: dict, report) -> None:
    again = home.run(job)
    assert again.process.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr
    result = again.result()
    trials = [m["trial_id"] for m in result["trial_models"]]
    registered = home.registered_trials(job["name"])
    lost = TRIALS - len(set(registered))
    duplicated = len(registered) - len(set(registered))
    report.record(survived=len(set(trials)) == TRIALS, lost=lost, duplicated=duplicated)
    assert len(trials) == len(set(trials)) == TRIALS
    assert (lost, duplicated) == (0, 0)
    # Trials that had finished were not run again: same start, same result.
    after = home.trial_results(job["name"])
    for trial_id, before in finished_before.items():
        assert after[trial_id]["started_at"] == before["started_at"], trial_id
        assert after[trial_id]["metrics"] == before["metrics"], trial_id
    assert "RUNNING" not in home.run_statuses(job["name"])
    assert home.job_record(job["name"])["state"] == "finished"


@pytest.mark.fault("SIGKILL of unitrain run during a search")
def test_a_killed_job_frees_its_name_and_resumes(shared_home: Home, report):
    job = tuning_job("fault-sigkill", trials=TRIALS, work_s=3)
    running = shared_home.start(job)
    wait_for(lambda: shared_home.finished_trials(job["name"]) >= 2, 240, "two finished trials")
    finished = {
        k: v for k, v in shared_home.trial_results(job["name"]).items() if v["status"] == "FINISHED"
    }
    running.kill()
    resume_and_check(shared_home, job, finished, report)
    states = shared_home.flow_run_states(job["name"])
    assert sorted(states) == ["COMPLETED", "CRASHED"], states


@pytest.mark.parametrize(
    ("how", "code", "said"),
    [("ctrl_c", 130, "interrupted (Ctrl-C)"), ("terminate", 143, "interrupted (SIGTERM)")],
)
def test_an_interrupted_job_exits_cleanly_and_resumes(shared_home: Home, report, how, code, said):
    report.fault = f"{'Ctrl-C' if how == 'ctrl_c' else 'SIGTERM'} during a search"
    job = tuning_job(f"fault-{how}", trials=TRIALS, work_s=3)
    running = shared_home.start(job)
    wait_for(lambda: shared_home.finished_trials(job["name"]) >= 2, 240, "two finished trials")
    finished = {
        k: v for k, v in shared_home.trial_results(job["name"]).items() if v["status"] == "FINISHED"
    }
    signalled = time.monotonic()
    sent_at = time.strftime("%H:%M:%S")  # to set against the job's own timestamps
    getattr(running, how)()
    assert running.wait(60) == code, f"signal sent at {sent_at}\n{running.stderr[-3000:]}"
    assert time.monotonic() - signalled < 30
    last = running.stderr.strip().splitlines()[-1]
    assert last.startswith(said) and "again to resume it" in last, last
    assert "Traceback" not in running.stderr
    # Nothing the job started is left (the shared local API runs in a session of its own).
    assert wait_for(lambda: not ray_processes_of(running.process.pid), 15, "no process left")
    assert "RUNNING" not in shared_home.run_statuses(job["name"])
    assert set(shared_home.run_statuses(job["name"])) <= {"FINISHED", "KILLED"}
    assert shared_home.flow_run_states(job["name"]) == ["CRASHED"]
    assert shared_home.job_record(job["name"])["state"] == "interrupted"
    resume_and_check(shared_home, job, finished, report)


@pytest.mark.fault("two runs of one name started together")
def test_two_runs_of_one_name_one_is_refused_at_once(shared_home: Home, report):
    job = tuning_job("fault-twice", trials=2, work_s=1)
    first = shared_home.start(job)
    # The second starts once the first holds the name: Python's start-up alone can
    # take longer than any fixed pause on a busy machine.
    lock = shared_home.path / "runs" / job["name"] / "job.lock"
    holder = f"pid {first.process.pid} "
    wait_for(lambda: lock.exists() and lock.read_text().startswith(holder), 60, "the lock")
    started = time.monotonic()
    second = shared_home.start(job)
    code = second.wait(60)
    refused_after = time.monotonic() - started
    assert first.wait(300) == 0, first.stderr[-3000:]
    assert code == 2 and "already running" in second.stderr, second.stderr
    assert refused_after < 15
    registered = shared_home.registered_trials(job["name"])
    report.record(
        survived=True,
        lost=2 - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert sorted(set(registered)) == sorted(registered) and len(registered) == 2
