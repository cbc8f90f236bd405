"""Fake secrets planted in every credential variable appear in no store after real jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_run import unitrain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRETS = {
    "MLFLOW_TRACKING_USERNAME": "planted-user-5d1f",
    "MLFLOW_TRACKING_PASSWORD": "planted-password-8c2e",
    "MLFLOW_TRACKING_TOKEN": "planted-token-3a9b",
    "PREFECT_API_KEY": "planted-prefect-key-77aa",
    "PREFECT_API_AUTH_STRING": "admin:planted-auth-41c0",
    "UNITRAIN_EXTRA_SECRET": "planted-unitrain-secret-90fe",
    "AWS_SECRET_ACCESS_KEY": "planted-aws-secret-12ab",
}


def _grep(blob: bytes, where: str, found: list[str]) -> None:
    for value in SECRETS.values():
        if value.encode() in blob:
            found.append(f"{value} in {where}")


def test_no_planted_secret_reaches_any_store(tmp_path: Path):
    home = tmp_path / "home"
    started = time.time()
    training = {"name": "secret-train", "dataset": 1, "hyperparameter": {"epochs": 2}}
    tuning = {
        "name": "secret-tune",
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        "tune_config": {"metric": "score", "num_samples": 2},
    }
    found: list[str] = []
    for job in (training, tuning):
        path = tmp_path / f"{job['name']}.json"
        path.write_text(json.dumps(job))
        done = unitrain(home, "run", str(path), extra_env=SECRETS)
        assert done.returncode == 0, done.stderr[-3000:]
        _grep(done.stdout.encode() + done.stderr.encode(), f"the output of {job['name']}", found)

    # Prefect: logs, artifacts and flow runs (their parameters) through its API
    api = json.loads((home / "local" / "stack.json").read_text())["api_url"]
    for kind in ("logs", "artifacts", "flow_runs", "task_runs"):
        response = httpx.post(f"{api}/{kind}/filter", json={"limit": 200}, timeout=30)
        response.raise_for_status()
        _grep(response.content, f"Prefect {kind}", found)
    # MLflow: its database and every artifact; the rest of the home (records, caches)
    for file in home.rglob("*"):
        if file.is_file():
            _grep(file.read_bytes(), str(file.relative_to(home)), found)
    # Ray: the logs of every session started since the test began
    for session in Path("/tmp/ray").glob("session_2*"):
        if session.stat().st_mtime < started - 5:
            continue
        for file in (session / "logs").rglob("*"):
            if file.is_file():
                _grep(file.read_bytes(), f"Ray's {file.name}", found)
    assert found == []
