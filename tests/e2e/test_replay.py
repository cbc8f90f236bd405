"""``unitrain replay``, for real: the command line on its own home, a seeded training model
and a seeded trial made again and compared, and a refusal once the dataset changed."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_cli_run import unitrain

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("replay") / "home"
    yield home
    stopped = unitrain(home, "stop")
    assert stopped.returncode == 0, stopped.stderr


def run_job(home: Path, tmp_path: Path, params: dict, plugin: str | None = None) -> dict:
    job = {"action": "train", "params": params} | ({"plugin": plugin} if plugin else {})
    path = tmp_path / f"{params['name']}.json"
    path.write_text(json.dumps(job))
    done = unitrain(home, "run", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def replay(home: Path, model_id: int):
    return unitrain(home, "replay", str(model_id), "--json")


def test_a_seeded_training_model_replays_to_equal_metrics(home, tmp_path):
    made = run_job(
        home,
        tmp_path,
        {"name": "seeded", "dataset": 1, "hyperparameter": {"epochs": 2, "seed": 7}},
    )
    again = replay(home, made["model_id"])
    assert again.returncode == 0, again.stderr[-3000:]
    verdict = json.loads(again.stdout)
    assert verdict["equal"] is True and verdict["model_id"] == made["model_id"]
    assert verdict["replay_model_id"] > made["model_id"]
    metrics = verdict["metrics"]
    assert {"validation_accuracy", "validation_loss", "loss"} <= set(metrics)
    assert all(m["recorded"] == pytest.approx(m["replayed"], rel=1e-6) for m in metrics.values())

    # The replay is a job of its own, with the recorded configuration.
    listing = json.loads(unitrain(home, "models", "list", "--json").stdout)
    replayed = next(m for m in listing if m["model_id"] == verdict["replay_model_id"])
    original = next(m for m in listing if m["model_id"] == made["model_id"])
    assert replayed["job"] == verdict["job"] != original["job"]
    assert replayed["hyperparameters"] == original["hyperparameters"]


def test_a_trial_replays_to_equal_metrics_and_a_different_one_is_named(home, tmp_path):
    made = run_job(
        home,
        tmp_path,
        {
            "name": "searched",
            "dataset": 1,
            "is_tune": True,
            "hyperparameter": {"y": 0.2},
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {"metric": "score", "num_samples": 2, "seed": 5},
        },
        plugin="synthetic",
    )
    trial_model = made["trial_models"][0]["model_id"]
    again = replay(home, trial_model)
    assert again.returncode == 0, again.stderr[-3000:]
    verdict = json.loads(again.stdout)
    assert verdict["equal"] is True
    assert verdict["metrics"]["score"]["recorded"] == made["trial_models"][0]["metrics"]["score"]

    assert verdict["tolerance"] == 1e-6


def test_replay_refuses_when_the_datasets_content_changed(home, tmp_path):
    data = tmp_path / "points.npz"
    np.savez(data, X=np.zeros((8, 2), dtype="float32"), y=np.arange(8) % 2)
    added = unitrain(home, "datasets", "add", str(data), "--id", "300")
    assert added.returncode == 0, added.stderr
    made = run_job(
        home,
        tmp_path,
        {"name": "on-points", "dataset": 300, "hyperparameter": {"x": 0.4}},
        plugin="synthetic",
    )
    old = hashlib.sha256(data.read_bytes()).hexdigest()
    # The file changes, and no cached copy of the old content is left (a new machine).
    np.savez(data, X=np.ones((8, 2), dtype="float32"), y=np.arange(8) % 2)
    for cached in (home / "datasets" / "cache").glob("300-*"):
        shutil.rmtree(cached)

    refused = replay(home, made["model_id"])
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "error: replay refused: dataset 300 (points.npz)" in refused.stderr
    new = hashlib.sha256(data.read_bytes()).hexdigest()
    assert f"sha256 {old}" in refused.stderr and new[:12] in refused.stderr
    listing = json.loads(unitrain(home, "models", "list", "--json").stdout)
    assert max(m["model_id"] for m in listing) == made["model_id"]  # nothing ran
