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
from tests.servers import LossyProxy, MlflowServer

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


@pytest.mark.fault("the MLflow server's replies to 3 writes are lost (the writes took effect)")
def test_writes_whose_replies_were_lost_are_found_not_made_twice(
    tmp_path: Path, shared_home: Home, report
):
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path)
    server.start()
    proxy = LossyProxy(server.url)
    proxy.start()
    try:
        # The job's own run is created first: the lost run is a trial's.
        proxy.lose_replies("POST", "/api/2.0/mlflow/runs/create", 1, skip=1)
        proxy.lose_replies("POST", "/api/2.0/mlflow/model-versions/create", 2, skip=1)
        job = tuning_job("fault-lost-replies", trials=6, work_s=0.2)
        env = shared_home.env(MLFLOW_TRACKING_URI=proxy.url, UNITRAIN_STORE_RETRY_S="60")
        running = shared_home.start(job, env=env)
        assert running.wait(400) == 0, running.stderr[-3000:]
        assert proxy.pending() == {}, "the proxy did not lose every reply it was told to"
        client = MlflowClient(tracking_uri=server.url)  # the server itself, not the proxy
        runs = client.search_runs(
            [client.get_experiment_by_name("unitrain").experiment_id],
            filter_string=f"tags.`unitrain.job` = '{job['name']}'",
        )
        trial_runs = [r.data.tags.get("unitrain.trial_id") for r in runs]
        trial_runs = [t for t in trial_runs if t]
        registered = server.registered_trials(job["name"])
        report.record(
            survived=True,
            lost=6 - len(set(registered)),
            duplicated=len(registered) - len(set(registered)) + len(runs) - 7,
        )
        assert len(runs) == 7, [r.info.run_name for r in runs]  # the job's run and 6 trials'
        assert sorted(trial_runs) == sorted(set(trial_runs)) and len(trial_runs) == 6
        assert len(registered) == len(set(registered)) == 6
        assert sorted(registered) == sorted(trial_runs)
    finally:
        proxy.stop()
        server.stop()
