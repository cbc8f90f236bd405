"""Run it the way operators do: ``unitrain serve --deploy``, then ``prefect deployment run``.

A real Prefect server (SQLite, loopback, free ports), a real process worker,
the deployments of ``prefect.yaml``; the test talks to them only through the
Prefect CLI and REST API, and checks what landed in MLflow. Everything the
stack started is gone afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.stores import experiment_id, mlflow_client
from unitrain.stores.registry import ModelRegistry

# Each deployment run starts a flow process of its own: minutes in all, so `make slow`.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    home: Path
    api_url: str
    env: dict[str, str]

    def prefect(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_deployment(self, name: str, params: dict | None = None) -> dict:
        """``prefect deployment run --watch``; return the finished flow run from the API."""
        args = ["deployment", "run", name, "--watch", "--watch-timeout", "240"]
        if params is not None:
            args += ["--params", json.dumps(params)]
        done = self.prefect(*args)
        flow_run_id = next(
            line.split("UUID:")[1].strip() for line in done.stdout.splitlines() if "UUID:" in line
        )
        return httpx.get(f"{self.api_url}/flow_runs/{flow_run_id}", timeout=10).json()

    def artifacts(self, flow_run_id: str) -> list[dict]:
        body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        return httpx.post(f"{self.api_url}/artifacts/filter", json=body, timeout=10).json()

    def registry(self) -> ModelRegistry:
        return ModelRegistry(tracking_uri=self.env["MLFLOW_TRACKING_URI"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("served")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(
        UNITRAIN_HOME=str(home),
        UNITRAIN_IDLE_S="5",
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    prefect_port, mlflow_port = free_port(), free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unitrain.cli",
            "serve",
            "--deploy",
            "--prefect-port",
            str(prefect_port),
            "--mlflow-port",
            str(mlflow_port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    output: list[str] = []
    try:
        for line in serve.stdout:  # type: ignore[union-attr]
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        else:
            pytest.fail("unitrain serve stopped while starting:\n" + "".join(output[-50:]))
        assert httpx.get(f"http://127.0.0.1:{mlflow_port}/health", timeout=5).status_code == 200
        yield Stack(home=home, api_url=api_url, env={**env, "PREFECT_API_URL": api_url})
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
    # Everything it started is stopped: nothing answers on its ports any more.
    for port in (prefect_port, mlflow_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert not (home / "prefect" / "server.json").exists()


def test_training_and_tuning_jobs_run_as_deployments(stack: Stack):
    run = stack.run_deployment(
        "train/unified",
        {
            "name": "served-training",
            "dataset": 1,
            "checkpoint": None,
            "hyperparameter": {
                "epochs": 3,
                "batch_size": 32,
                "learning_rate": 0.001,
                "optimizer": "adam",
            },
        },
    )
    assert run["state"]["type"] == "COMPLETED", run["state"]
    kinds = {a["type"] for a in stack.artifacts(run["id"])}
    assert {"progress", "markdown"} <= kinds
    logs = httpx.post(
        f"{stack.api_url}/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [run["id"]]}}},
        timeout=10,
    ).json()
    assert any("registered model" in entry["message"] for entry in logs)
    [model] = stack.registry().models(job="served-training")

    tuned = stack.run_deployment(
        "train/unified",
        {
            "name": "served-tuning",
            "dataset": 1,
            "is_tune": True,
            "plugin": "synthetic",
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {"metric": "score", "mode": "max", "num_samples": 3},
        },
    )
    assert tuned["state"]["type"] == "COMPLETED", tuned["state"]
    artifacts = stack.artifacts(tuned["id"])
    assert {"progress", "table", "markdown"} <= {a["type"] for a in artifacts}
    summary = next(a for a in artifacts if a["type"] == "markdown")["data"]
    assert "score per trial" in summary and "/#/models/unitrain/versions/" in summary
    models = stack.registry().models(job="served-tuning")
    assert len(models) == 3 and sum(m.best for m in models) == 1


def test_scheduled_retraining_continues_from_its_previous_model(stack: Stack):
    deployment = httpx.get(
        f"{stack.api_url}/deployments/name/train/retrain-digits-nightly", timeout=10
    ).json()
    assert deployment["schedules"][0]["schedule"]["cron"]
    first = stack.run_deployment("train/retrain-digits-nightly")
    second = stack.run_deployment("train/retrain-digits-nightly")
    assert first["state"]["type"] == second["state"]["type"] == "COMPLETED"
    registry = stack.registry()
    earlier, later = registry.models(job="digits-nightly")
    run = mlflow_client(registry.tracking_uri).get_run(later.run_id)
    assert run.data.tags["unitrain.checkpoint"] == str(earlier.model_id)
    # The promotion gate: "champion" went to the later model only if it scored better.
    metric = "validation_accuracy"
    better = later.metrics[metric] > earlier.metrics[metric]
    holder = later if better else earlier
    assert registry.holder_of("champion") == holder.model_id
    assert run.data.tags["unitrain.promotion"].startswith("promoted" if better else "kept")


def test_scheduled_retuning_learns_from_its_earlier_round_and_starts_from_its_best(stack: Stack):
    first = stack.run_deployment("train/retune-digits-weekly")
    second = stack.run_deployment("train/retune-digits-weekly")
    assert first["state"]["type"] == second["state"]["type"] == "COMPLETED", second["state"]
    registry = stack.registry()
    runs = mlflow_client(registry.tracking_uri).search_runs(
        [experiment_id(registry.tracking_uri)],
        filter_string="tags.`unitrain.job` = 'digits-retune'",
        order_by=["attributes.start_time ASC"],
    )
    rounds = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(rounds) == 2
    one, two = (r.info.run_id for r in rounds)
    kept = registry.registered_trials("digits-retune", one)
    assert len(kept) == 2  # keep_models: 2
    best_of_round_one = kept[rounds[0].data.tags["unitrain.best_trial"]]
    # Round two's trials started from round one's best model...
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == two]
    assert len(trials) == 3
    assert {t.data.tags["unitrain.checkpoint"] for t in trials} == {str(best_of_round_one)}
    # ...and its table ranks round one's trials with its own.
    tables = [a for a in stack.artifacts(second["id"]) if a["type"] == "table"]
    rows = json.loads(max(tables, key=lambda a: a["created"])["data"])
    assert [r["status"] for r in rows].count("EARLIER") == 3
    assert sum(r["status"] == "TERMINATED" for r in rows) == 3
