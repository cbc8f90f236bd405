"""unitrain on the production stack, as an operator runs it: PostgreSQL-backed Prefect, an
MLflow tracking server with proxied artifacts, a two-node Ray cluster from ``ray start``;
``unitrain run`` pointed at them by the README's variables only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.production.stack import ProductionStack

# Servers of its own, jobs in processes of their own: minutes, so `make slow`.
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    stack = ProductionStack(tmp_path_factory.mktemp("production"))
    try:
        stack.start()
        yield stack
    finally:
        left = stack.stop()
        assert not left, f"still running after the stack stopped: {left}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("operator") / "home"


def unitrain(stack: ProductionStack, home: Path, *args: str, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "unitrain.cli", *args],
        env=stack.env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_job(stack: ProductionStack, home: Path, tmp_path: Path, job: dict) -> dict:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    done = unitrain(stack, home, "run", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def flow_runs(stack: ProductionStack, name: str) -> list[dict]:
    response = httpx.post(
        f"{stack.prefect_api_url}/flow_runs/filter",
        json={"flow_runs": {"name": {"any_": [name]}}},
        timeout=30,
    )
    return response.json()


def versions_of(stack: ProductionStack, job: str) -> list[dict]:
    assert stack.mlflow is not None
    response = httpx.get(
        f"{stack.mlflow.url}/api/2.0/mlflow/model-versions/search",
        params={"filter": "name = 'unitrain'", "max_results": 1000},
        timeout=30,
    )
    versions = response.json().get("model_versions", [])
    return [
        v for v in versions if {t["key"]: t["value"] for t in v.get("tags", [])}.get(
            "unitrain.job") == job
    ]  # fmt: skip


def test_a_training_job_lands_in_the_servers_and_its_model_loads_over_http(stack, home, tmp_path):
    job = {
        "action": "train",
        "params": {"name": "prod-training", "dataset": 1, "hyperparameter": {"epochs": 2}},
    }
    result = run_job(stack, home, tmp_path, job)
    model_id = result["model_id"]

    # The flow run is in the PostgreSQL-backed Prefect server, completed.
    [flow_run] = flow_runs(stack, "prod-training")
    assert flow_run["state_type"] == "COMPLETED"
    # The model's files are only in the tracking server's artifact folder.
    assert stack.mlflow is not None
    artifacts = stack.mlflow.folder / "artifacts"
    assert any(p.name == "model.pt" for p in artifacts.rglob("*"))
    assert not (home / "mlflow").exists()  # no local store beside the server's
    # ... and MLflow loads it over HTTP, by its model ID.
    load = (
        "import mlflow.pyfunc, numpy as np;"
        f"m = mlflow.pyfunc.load_model('models:/unitrain/{model_id}');"
        "print(m.predict(np.zeros((2, 64), dtype='float32')).shape)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", load],
        env=stack.env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1] == "(2, 10)"


def test_a_tuning_job_with_a_scheduler_registers_every_trial(stack, home, tmp_path):
    job = {
        "action": "train",
        "plugin": "synthetic",
        "params": {
            "name": "prod-asha",
            "dataset": 1,
            "is_tune": True,
            "hyperparameter": {"steps": 4, "work_s": 0.4},
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {
                "metric": "score",
                "mode": "max",
                "num_samples": 6,
                "max_concurrent_trials": 2,
                "seed": 1,
                "scheduler": {"name": "asha", "options": {"max_t": 4, "grace_period": 1}},
            },
        },
    }
    result = run_job(stack, home, tmp_path, job)
    assert len(result["trial_models"]) == 6
    versions = versions_of(stack, "prod-asha")
    assert len(versions) == 6
    assert stack.mlflow is not None
    best = httpx.get(
        f"{stack.mlflow.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": "unitrain", "alias": "best-prod-asha"},
        timeout=30,
    ).json()["model_version"]["version"]
    assert int(best) == result["model_id"] in {int(v["version"]) for v in versions}


def test_the_loss_of_the_worker_node_mid_search_is_survived(stack, home, tmp_path):
    worker = stack.worker_node()
    job = {
        "action": "train",
        "plugin": "synthetic",
        "params": {
            "name": "prod-node-loss",
            "dataset": 1,
            "is_tune": True,
            "hyperparameter": {"work_s": 4, "steps": 2},
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {
                "metric": "score",
                "mode": "max",
                "num_samples": 4,
                "max_concurrent_trials": 2,
                "max_failures": 2,
            },
        },
    }
    killed: dict[str, int] = {}

    def kill_a_busy_worker() -> None:
        trials = home / "runs" / "prod-node-loss" / "trials"
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            for path in trials.glob("*/trial.json"):
                state = json.loads(path.read_text() or "{}")
                if state.get("status") == "RUNNING" and state.get("node") == worker:
                    killed["pid"] = stack.kill_worker_node(worker)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    result = run_job(stack, home, tmp_path, job)
    killer.join(timeout=5)
    assert killed, "no trial ran on the worker node"
    assert len(result["trial_models"]) == 4
    trials = [
        {t["key"]: t["value"] for t in v.get("tags", [])}["unitrain.trial_id"]
        for v in versions_of(stack, "prod-node-loss")
    ]
    assert sorted(trials) == sorted(set(trials)) and len(trials) == 4  # one version each
    assert os.path.exists(f"/proc/{killed['pid']}") is False
