"""The two writers of finished runs: SQLite's one transaction reads back, through MLflow, as
MLflow's client's calls do; and each store gets the writer that is safe for it."""

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stores import experiment_id, mlflow_client
from unitrain.stores import sqlite_writer, writers
from unitrain.stores.client_writer import ClientWriter
from unitrain.stores.mlflow_store import EXPERIMENT_NAME, TAG, MlflowStore, new_request_key
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.sqlite_writer import SqliteWriter, unverified_reason
from unitrain.stores.writes import FinishedRun, ModelVersion

HOLD_THE_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1])
connection.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(1.5)
connection.rollback()
"""
START, END = 1_700_000_000_000, 1_700_000_001_500
TAGS = {"unitrain.job": "j", "unitrain.trial_id": "t1", "mlflow.parentRunId": "p" * 32}
PARAMS = {"lr": "0.1", "layers": "[64, 32]"}
METRICS = [
    ("loss", 0.5, START + 10, 0),
    ("loss", 0.25, START + 20, 1),
    ("loss", 0.25, START + 20, 1),  # logged twice: one row, as in MLflow
    ("score", float("nan"), START + 30, 1),
    ("big", float("inf"), START + 30, 1),
    ("late", 2.0, START + 40, 5),
    ("late", 1.0, START + 50, 3),  # a lower step later: not the latest
]
VERSION_TAGS = {"unitrain.job": "j", "unitrain.trial_id": "t1", "unitrain.metrics": "{}"}


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    return folder


def finished(model_dir: Path, name: str = "r", *, model: bool = True) -> FinishedRun:
    return FinishedRun(
        request=new_request_key(),
        experiment_id=experiment_id(),
        name=name,
        status="FINISHED",
        start_ms=START,
        end_ms=END,
        tags=TAGS,
        params=PARAMS,
        metrics=METRICS,
        uploads=((str(model_dir), "model"),),
        model=ModelVersion("unitrain", "model", "job j, trial t1", VERSION_TAGS) if model else None,
    )


def comparable_run(run_id: str) -> dict:
    client = mlflow_client()
    run = client.get_run(run_id)
    info = run.info
    history = {
        key: [(m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    request = run.data.tags[TAG.REQUEST]
    return {
        "info": (info.run_name, info.status, info.start_time, info.end_time, info.lifecycle_stage),
        "user": info.user_id,
        "experiment": info.experiment_id,
        "artifact_uri": info.artifact_uri.replace(run_id, "<id>"),
        "tags": {k: v.replace(request, "<request>") for k, v in run.data.tags.items()},
        "params": run.data.params,
        "metrics": {k: (str(v)) for k, v in run.data.metrics.items()},
        "history": {k: sorted(map(str, v)) for k, v in history.items()},
        "artifacts": sorted(a.path for a in client.list_artifacts(run_id, "model")),
    }


def comparable_version(version: int, run_id: str) -> dict:
    mv = mlflow_client().get_model_version("unitrain", str(version))
    request = mv.tags[TAG.REQUEST]
    return {
        "source": mv.source.replace(run_id, "<id>"),
        "run_id": mv.run_id == run_id,
        "tags": {k: v.replace(request, "<request>") for k, v in mv.tags.items()},
        "description": mv.description,
        "status": mv.status,
        "stage": mv.current_stage,
    }


def test_a_run_written_in_one_transaction_reads_back_as_the_clients(home, model_dir):
    store = MlflowStore()
    [by_client] = ClientWriter(store).write_many([finished(model_dir)])
    [ours] = SqliteWriter(store).write_many([finished(model_dir)])
    assert ours.model_id == by_client.model_id + 1
    assert comparable_run(ours.run_id) == comparable_run(by_client.run_id)
    assert comparable_version(ours.model_id, ours.run_id) == comparable_version(
        by_client.model_id, by_client.run_id
    )
    found = mlflow_client().search_runs(
        [experiment_id()], filter_string=f"tags.`mlflow.parentRunId` = '{'p' * 32}'"
    )
    assert {r.info.run_id for r in found} == {by_client.run_id, ours.run_id}
    registry = ModelRegistry()
    assert [r.model_id for r in registry.models(job="j")] == [by_client.model_id, ours.model_id]
    downloaded = registry.download(ours.model_id, model_dir.parent / "downloaded")
    assert (downloaded / "weights.bin").read_bytes() == b"\x00\x01"


def test_model_ids_stay_consecutive_between_both_writers(home, model_dir):
    store = MlflowStore()
    sql, client = SqliteWriter(store), ClientWriter(store)
    versions = [w.write_many([finished(model_dir)])[0].model_id for w in (sql, client, sql)]
    assert versions == [1, 2, 3]
    assert mlflow_client().get_registered_model("unitrain").latest_versions


def test_runs_written_together_read_back_as_each_written_alone(home, model_dir):
    writer = SqliteWriter(MlflowStore())
    [alone] = writer.write_many([finished(model_dir)])
    runs = [finished(model_dir, name) for name in ("a", "b", "c")]
    runs.insert(1, finished(model_dir, "no model", model=False))
    written = writer.write_many(runs)
    assert [w.model_id for w in written] == [
        alone.model_id + 1,
        None,
        alone.model_id + 2,
        alone.model_id + 3,
    ]
    expected = comparable_run(alone.run_id)
    for run, done in zip(runs, written, strict=True):
        got = comparable_run(done.run_id)
        assert {**got, "info": None, "tags": None} == {**expected, "info": None, "tags": None}
        assert got["tags"] == {**expected["tags"], "mlflow.runName": run.name}
        if done.model_id is not None:
            assert comparable_version(done.model_id, done.run_id) == comparable_version(
                alone.model_id, alone.run_id
            )


def test_a_failed_write_of_runs_together_writes_none_of_them(home, model_dir):
    from sqlalchemy.exc import IntegrityError

    writer = SqliteWriter(MlflowStore())
    first = finished(model_dir, "a")
    writer.write_many([first])
    again = [finished(model_dir, "b"), first]  # the second is there already
    with pytest.raises(IntegrityError):
        writer.write_many(again)
    assert [r.model_id for r in ModelRegistry().models(job="j")] == [1]
    assert not mlflow_client().search_runs(
        [experiment_id()], filter_string=f"attributes.run_id = '{again[0].request}'"
    )


def test_a_held_lock_delays_the_write_and_loses_nothing(home, model_dir):
    store = MlflowStore()
    writer = SqliteWriter(store)
    writer.write_many([finished(model_dir)])  # the store exists
    path = store.tracking_uri.removeprefix("sqlite:///")
    holder = subprocess.Popen(  # another process's write transaction, for 1.5 s
        [sys.executable, "-c", HOLD_THE_LOCK, path], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    started = time.monotonic()
    [done] = writer.write_many([finished(model_dir)])
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0
    assert waited >= 1.0, "the write did not wait for the lock"
    assert done.model_id == 2
    assert mlflow_client().get_run(done.run_id).info.status == "FINISHED"


def test_the_client_writer_finds_a_run_an_earlier_attempt_made(home, model_dir):
    writer = ClientWriter(MlflowStore())
    run = finished(model_dir)
    [first] = writer.write_many([run])
    [second] = writer.write_many([run], again=True)  # as after a lost reply
    assert second == first
    assert len(ModelRegistry().models(job="j")) == 1
    assert len(mlflow_client().search_runs([experiment_id()])) == 1


def test_the_sqlite_writer_writes_into_the_active_workspace(home, monkeypatch):
    assert SqliteWriter(MlflowStore()).workspace == "default"
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    assert SqliteWriter(MlflowStore()).workspace == "team-a"


@pytest.fixture
def fresh_choice(monkeypatch):
    monkeypatch.setattr(writers, "_CHOSEN", {})


def test_an_sqlite_store_with_local_artifacts_gets_the_sqlite_writer(home, fresh_choice):
    assert isinstance(writers.writer_for(MlflowStore()), SqliteWriter)


def test_another_mlflow_release_gets_the_client_writer_and_one_line_why(
    home, fresh_choice, monkeypatch, caplog
):
    monkeypatch.setattr(sqlite_writer, "VERIFIED_MLFLOW", frozenset({"2.9"}))
    with caplog.at_level(logging.INFO, logger="unitrain.stores.writers"):
        assert isinstance(writers.writer_for(MlflowStore()), ClientWriter)
        assert isinstance(writers.writer_for(MlflowStore()), ClientWriter)  # chosen once
    lines = [r.getMessage() for r in caplog.records if "client" in r.getMessage()]
    assert len(lines) == 1 and "verified for MLflow 2.9" in lines[0]


def test_the_verified_releases_are_named_by_major_and_minor():
    assert unverified_reason("3.17.2") == ""
    assert unverified_reason("3.18.0") == ""
    assert "this is MLflow 3.99.0" in unverified_reason("3.99.0")


def test_artifacts_kept_elsewhere_go_through_the_client(home, fresh_choice):
    mlflow_client().create_experiment(EXPERIMENT_NAME, artifact_location="s3://bucket/unitrain")
    assert isinstance(writers.writer_for(MlflowStore()), ClientWriter)


def test_a_tracking_server_gets_the_client_writer(fresh_choice, monkeypatch):
    store = MlflowStore.__new__(MlflowStore)  # no connection is made for the choice
    store.tracking_uri = "http://127.0.0.1:5000"
    assert isinstance(writers.writer_for(store), ClientWriter)
