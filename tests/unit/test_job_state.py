"""The lock that holds a job's name dies with its process; the record survives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from unitrain.errors import JobValidationError
from unitrain.stores.job_state import JobFolder, JobRecord, params_digest

HOLD = """
import sys, time
from unitrain.stores.job_state import JobFolder
with JobFolder(sys.argv[1]).locked():
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_another_process(job: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, job], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_held_name_is_refused_at_once_and_freed_when_its_holder_is_killed(home):
    holder = hold_in_another_process("busy")
    try:
        started = time.monotonic()
        with pytest.raises(
            JobValidationError, match=rf"job 'busy' is already running \(pid {holder.pid} on "
        ):
            with JobFolder("busy").locked():
                pass
        assert time.monotonic() - started < 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with JobFolder("busy").locked():  # the kernel dropped the dead holder's lock
        pass


def test_the_lock_is_reentrant_in_one_process(home):
    folder = JobFolder("mine")
    with folder.locked(), JobFolder("mine").locked():
        pass
    with folder.locked():
        pass


def test_the_record_round_trips(home):
    folder = JobFolder("j%3A1")
    assert folder.record() is None
    record = JobRecord(job="j%3A1", mode="tuning", digest="abc", state="running", run_id="r1")
    folder.save(record)
    assert folder.record() == record
    assert folder.record().moved_to("finished").finished


def test_the_digest_ignores_the_name_only():
    params = {"name": "a", "dataset": 1, "hyperparameter": {"epochs": 2}}
    assert params_digest(params, "p") == params_digest({**params, "name": "b"}, "p")
    assert params_digest(params, "p") != params_digest(params, "q")
    assert params_digest(params, "p") != params_digest({**params, "dataset": 2}, "p")
