"""Stores have bad minutes: a SQLite store another process holds locked, an MLflow server
that stops and comes back. Jobs wait them out; a longer outage fails the job with one
clear message, and running it again once the store is back finishes it."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.faults.helpers import Home, tuning_job, wait_for
from tests.servers import MlflowServer

pytestmark = pytest.mark.faults


@pytest.mark.fault("another process holds the SQLite store locked for 8 s")
def test_a_held_sqlite_lock_is_waited_out(shared_home: Home, report):
    job = tuning_job("fault-sqlite-lock", trials=4, work_s=1)
    running = shared_home.start(job)
    database = shared_home.path / "mlflow" / "mlflow.db"
    wait_for(lambda: shared_home.finished_trials(job["name"]) >= 1, 240, "a finished trial")

    def hold() -> None:
        with sqlite3.connect(database, timeout=30, isolation_level=None) as db:
            db.execute("BEGIN EXCLUSIVE")
            time.sleep(8)
            db.execute("COMMIT")

    holder = threading.Thread(target=hold)
    holder.start()
    holder.join()
    assert running.wait(300) == 0, running.stderr[-3000:]
    registered = shared_home.registered_trials(job["name"])
    report.record(
        survived=True,
        lost=4 - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert len(registered) == len(set(registered)) == 4
    assert "database is locked" not in running.stderr


@pytest.mark.fault("the MLflow server stops for 10 s during a search")
def test_a_short_mlflow_outage_is_waited_out(tmp_path: Path, shared_home: Home, report):
    server = MlflowServer(tmp_path)
    server.start()
    try:
        job = tuning_job("fault-mlflow-blip", trials=6, work_s=2, max_concurrent_trials=1)
        env = shared_home.env(MLFLOW_TRACKING_URI=server.url, UNITRAIN_STORE_RETRY_S="120")
        running = shared_home.start(job, env=env)
        wait_for(lambda: shared_home.finished_trials(job["name"]) >= 2, 240, "two trials")
        server.stop()
        time.sleep(10)
        server.start()
        assert running.wait(400) == 0, running.stderr[-3000:]
        registered = server.registered_trials(job["name"])
        report.record(
            survived=True,
            lost=6 - len(set(registered)),
            duplicated=len(registered) - len(set(registered)),
        )
        assert len(registered) == len(set(registered)) == 6
    finally:
        server.stop()


@pytest.mark.fault("the MLflow server stays down longer than UNITRAIN_STORE_RETRY_S")
def test_a_long_mlflow_outage_fails_clearly_and_the_job_resumes(
    tmp_path: Path, shared_home: Home, report
):
    server = MlflowServer(tmp_path)
    server.start()
    job = tuning_job("fault-mlflow-down", trials=6, work_s=2, max_concurrent_trials=1)
    env = shared_home.env(MLFLOW_TRACKING_URI=server.url, UNITRAIN_STORE_RETRY_S="4")
    try:
        running = shared_home.start(job, env=env)
        wait_for(lambda: shared_home.finished_trials(job["name"]) >= 2, 240, "two trials")
        server.stop()
        assert running.wait(400) == 1
        last = running.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and "could not be reached" in last, last
        assert server.url.split("//")[1] in last
        assert "Traceback" not in running.stderr.split("Finished in state")[-1]
        assert (shared_home.path / "runs" / job["name"] / "trials").is_dir()  # kept
        server.start()
        again = shared_home.start(job, env=env)
        assert again.wait(400) == 0, again.stderr[-3000:]
        assert "resuming" in again.stderr
        registered = server.registered_trials(job["name"])
        report.record(
            survived=True,
            lost=6 - len(set(registered)),
            duplicated=len(registered) - len(set(registered)),
        )
        assert len(registered) == len(set(registered)) == 6
    finally:
        server.stop()
