"""A run written in one transaction reads back, through MLflow, as one its client wrote."""

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param

from unitrain.stores.registry import ModelRegistry, version_description
from unitrain.stores.sql_writes import FinishedRun, ModelVersion, SqlRunWriter, writes_directly

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


def by_client(registry: ModelRegistry, model_dir: Path) -> tuple[str, int]:
    client = registry.client
    run = client.create_run(registry.experiment_id(), start_time=START, tags=TAGS, run_name="r")
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric(*m) for m in METRICS],
        params=[Param(k, v) for k, v in PARAMS.items()],
    )
    client.set_terminated(run_id, "FINISHED", end_time=END)
    version = registry.register(
        run_id=run_id,
        model_dir=model_dir,
        job="j",
        plugin="p",
        dataset=1,
        hyperparameters={"lr": 0.1},
        metrics={"score": 0.9},
        trial_id="t1",
    )
    return run_id, version


def at_once(registry: ModelRegistry, model_dir: Path) -> tuple[str, int | None]:
    run = planned_run(registry, model_dir, "r")
    return run.run_id, registry.write_finished_run(run)


def planned_run(registry: ModelRegistry, model_dir: Path, name: str) -> FinishedRun:
    run_id, artifact_uri = registry.new_run_location()
    registry.log_artifacts(run_id, model_dir, "model")
    description, tags = version_description(
        job="j", plugin="p", dataset=1, hyperparameters={"lr": 0.1}, metrics={"score": 0.9},
        trial_id="t1",
    )  # fmt: skip
    return FinishedRun(
        run_id=run_id,
        experiment_id=registry.experiment_id(),
        artifact_uri=artifact_uri,
        name=name,
        status="FINISHED",
        start_ms=START,
        end_ms=END,
        tags=TAGS,
        params=PARAMS,
        metrics=METRICS,
        model=ModelVersion(registry.name, f"{artifact_uri}/model", description, tags),
    )


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    return folder


def comparable_run(registry: ModelRegistry, run_id: str) -> dict:
    client = registry.client
    run = client.get_run(run_id)
    info = run.info
    history = {
        key: [(m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    return {
        "info": (info.run_name, info.status, info.start_time, info.end_time, info.lifecycle_stage),
        "user": info.user_id,
        "experiment": info.experiment_id,
        "artifact_uri": info.artifact_uri.replace(run_id, "<id>"),
        "tags": run.data.tags,
        "params": run.data.params,
        "metrics": {k: (str(v)) for k, v in run.data.metrics.items()},
        "history": {k: sorted(map(str, v)) for k, v in history.items()},
    }


def comparable_version(registry: ModelRegistry, version: int, run_id: str) -> dict:
    mv = registry.client.get_model_version(registry.name, str(version))
    return {
        "source": mv.source.replace(run_id, "<id>"),
        "run_id": mv.run_id == run_id,
        "tags": mv.tags,
        "description": mv.description,
        "status": mv.status,
        "stage": mv.current_stage,
    }


def test_a_run_written_at_once_reads_back_as_the_clients(home, model_dir):
    registry = ModelRegistry()
    assert registry.writes_runs_at_once
    client_run, client_version = by_client(registry, model_dir)
    our_run, our_version = at_once(registry, model_dir)
    assert our_version == client_version + 1
    assert comparable_run(registry, our_run) == comparable_run(registry, client_run)
    assert comparable_version(registry, our_version, our_run) == comparable_version(
        registry, client_version, client_run
    )
    found = registry.client.search_runs(
        [registry.experiment_id()], filter_string=f"tags.`mlflow.parentRunId` = '{'p' * 32}'"
    )
    assert {r.info.run_id for r in found} == {client_run, our_run}
    assert [r.model_id for r in registry.models(job="j")] == [client_version, our_version]
    downloaded = registry.download(our_version, model_dir.parent / "downloaded")
    assert (downloaded / "weights.bin").read_bytes() == b"\x00\x01"


def test_model_ids_stay_consecutive_between_both_ways(home, model_dir):
    registry = ModelRegistry()
    versions = [at_once(registry, model_dir)[1], by_client(registry, model_dir)[1]]
    versions.append(at_once(registry, model_dir)[1])
    assert versions == [1, 2, 3]
    assert registry.client.get_registered_model(registry.name).latest_versions


def test_runs_written_together_read_back_as_each_written_alone(home, model_dir):
    registry = ModelRegistry()
    alone_run, alone_version = at_once(registry, model_dir)
    runs = [planned_run(registry, model_dir, name) for name in ("a", "b", "c")]
    runs.insert(1, replace(planned_run(registry, model_dir, "no model"), model=None))
    versions = registry.write_finished_runs(runs)
    assert versions == [alone_version + 1, None, alone_version + 2, alone_version + 3]
    alone = comparable_run(registry, alone_run)
    for run, version in zip(runs, versions, strict=True):
        written = comparable_run(registry, run.run_id)
        assert {**written, "info": None, "tags": None} == {**alone, "info": None, "tags": None}
        assert written["tags"] == {**alone["tags"], "mlflow.runName": run.name}
        if version is not None:
            assert comparable_version(registry, version, run.run_id) == comparable_version(
                registry, alone_version, alone_run
            )


def test_a_failed_write_of_runs_together_writes_none_of_them(home, model_dir):
    from sqlalchemy.exc import IntegrityError

    registry = ModelRegistry()
    first = planned_run(registry, model_dir, "a")
    registry.write_finished_runs([first])
    again = [planned_run(registry, model_dir, "b"), first]  # the second is there already
    with pytest.raises(IntegrityError):
        registry.write_finished_runs(again)
    assert [r.model_id for r in registry.models(job="j")] == [1]
    assert not registry.client.search_runs(
        [registry.experiment_id()], filter_string=f"attributes.run_id = '{again[0].run_id}'"
    )


def test_a_held_lock_delays_the_write_and_loses_nothing(home, model_dir):
    registry = ModelRegistry()
    at_once(registry, model_dir)  # the store exists
    path = registry.tracking_uri.removeprefix("sqlite:///")
    holder = subprocess.Popen(  # another process's write transaction, for 1.5 s
        [sys.executable, "-c", HOLD_THE_LOCK, path], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    started = time.monotonic()
    run_id, version = at_once(registry, model_dir)
    waited = time.monotonic() - started
    assert holder.wait(timeout=30) == 0
    assert waited >= 1.0, "the write did not wait for the lock"
    assert version == 2
    assert registry.client.get_run(run_id).info.status == "FINISHED"


def test_only_sqlite_stores_are_written_directly():
    assert writes_directly("sqlite:////tmp/mlflow.db")
    assert not writes_directly("http://127.0.0.1:5000")
    assert not writes_directly("postgresql://u@h/db")
    with pytest.raises(ValueError, match="not an SQLite store"):
        SqlRunWriter("http://127.0.0.1:5000")


def test_artifacts_kept_elsewhere_go_through_the_client(home):
    from unitrain.stores.registry import EXPERIMENT_NAME

    registry = ModelRegistry()
    registry.client.create_experiment(EXPERIMENT_NAME, artifact_location="s3://bucket/unitrain")
    assert not registry.writes_runs_at_once
