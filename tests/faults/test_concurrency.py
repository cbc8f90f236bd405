"""Ten jobs at once against one ``unitrain serve`` stack: all finish, nothing twice, no locks."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.faults.helpers import UNITRAIN, Home

pytestmark = pytest.mark.faults
JOBS = 10


def log_records(text: str) -> list[str]:
    """A log split into its records (a record starts with a time stamp: ``18:24:18.311 | ``)."""
    return [r for r in re.split(r"\n(?=\d\d:\d\d:\d\d\.\d+ \| )", text) if r.strip()]


def _heartbeat(record: str) -> bool:
    # The Prefect server keeps its worker's heartbeat as best it can: a busy SQLite
    # store fails one, logged, and the worker sends the next 30 s later. No job
    # request is involved.
    return "Worker channel heartbeat persistence failed" in record


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.fault(f"{JOBS} jobs at once against one served stack")
def test_ten_jobs_at_once_all_finish_and_register_once(tmp_path: Path, report):
    home = Home(tmp_path / "home")
    serve = subprocess.Popen(
        [*UNITRAIN, "serve", "--no-mlflow", "--prefect-port", str(free_port())],
        env=home.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert serve.stdout is not None
        for line in serve.stdout:
            if "Ctrl-C stops everything" in line:
                break
        else:
            pytest.fail("unitrain serve stopped while starting")
        env = home.env(UNITRAIN_RAY_NUM_CPUS="1")
        jobs = [
            home.start(
                {
                    "name": f"concurrent-{index}",
                    "dataset": 1,
                    "plugin": "synthetic",
                    "hyperparameter": {"x": index / JOBS, "work_s": 1},
                },
                env=env,
            )
            for index in range(JOBS)
        ]
        codes = [job.wait(900) for job in jobs]
        failed = [job.stderr[-2000:] for job, code in zip(jobs, codes, strict=True) if code]
        registered = {job.name: home.registered_trials(job.name) for job in jobs}
        lost = sum(1 for trials in registered.values() if not trials)
        duplicated = sum(len(trials) - 1 for trials in registered.values() if trials)
        report.record(survived=not failed, lost=lost, duplicated=duplicated)
        assert not failed, failed[0]
        assert (lost, duplicated) == (0, 0)
        records = [job.stderr for job in jobs]
        for path in (home.path / "logs").glob("*.log"):
            records += log_records(path.read_text())
        locked = [r for r in records if "database is locked" in r and not _heartbeat(r)]
        assert not locked, locked[0][-3000:]
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
