"""Configuration comes from one place, is read when asked, and is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unitrain.settings import VARIABLES, Settings, settings

ROOT = Path(__file__).parents[2]


def test_defaults_live_under_the_home_folder(tmp_path):
    config = Settings.from_environ({"UNITRAIN_HOME": str(tmp_path)})
    assert config.storage == tmp_path / "runs"
    assert config.artifact_root == tmp_path / "mlflow" / "artifacts"
    assert config.registered_model == "unitrain" and config.max_trials == 10_000
    assert config.mlflow_tracking_uri() == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert config.ray_address is None and config.prefect_api_url is None


def test_each_variable_is_read(tmp_path):
    config = Settings.from_environ(
        {
            "UNITRAIN_HOME": str(tmp_path),
            "UNITRAIN_STORAGE": str(tmp_path / "shared"),
            "UNITRAIN_REGISTERED_MODEL": "models",
            "UNITRAIN_ARTIFACT_ROOT": str(tmp_path / "art"),
            "UNITRAIN_MLFLOW_UI_URL": "http://mlflow:5000/",
            "UNITRAIN_MAX_TRIALS": "4",
            "UNITRAIN_RAY_NUM_CPUS": "3",
            "UNITRAIN_RAY_DASHBOARD": "1",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "RAY_ADDRESS": "auto",
        }
    )
    assert config.storage == tmp_path / "shared" and config.registered_model == "models"
    assert config.artifact_root == tmp_path / "art"
    assert config.mlflow_ui_url == "http://mlflow:5000" and config.max_trials == 4
    assert config.ray_num_cpus == 3 and config.ray_dashboard and config.local_cpus() == 3
    assert config.mlflow_tracking_uri() == "http://mlflow:5000" and config.ray_address == "auto"


def test_a_bad_number_names_the_variable():
    with pytest.raises(ValueError, match="UNITRAIN_MAX_TRIALS: expected a whole number"):
        Settings.from_environ({"UNITRAIN_MAX_TRIALS": "many"})
    with pytest.raises(ValueError, match="UNITRAIN_RAY_NUM_CPUS: must be at least 1"):
        Settings.from_environ({"UNITRAIN_RAY_NUM_CPUS": "0"})


def test_changes_to_the_environment_are_seen_at_the_next_call(monkeypatch, tmp_path):
    monkeypatch.setenv("UNITRAIN_REGISTERED_MODEL", "first")
    assert settings().registered_model == "first"
    monkeypatch.setenv("UNITRAIN_REGISTERED_MODEL", "second")
    assert settings().registered_model == "second"


def test_the_readme_documents_every_variable_and_no_other():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(UNITRAIN_[A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == {v.name for v in VARIABLES}


def test_only_the_settings_module_reads_unitrain_variables():
    readers = []
    for folder in ("unitrain", "flows", "tasks", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if re.search(r"environ(\.get)?\(?\[?[\"']UNITRAIN_", text):
                readers.append(path.relative_to(ROOT).as_posix())
    assert readers == ["unitrain/settings.py"]


def test_the_embedded_defaults_turn_mlflow_telemetry_off(tmp_path):
    # In a clean interpreter: MLflow never reports under pytest or CI variables,
    # so only a process without them shows what a user's process does.
    code = (
        "from unitrain.settings import configure_environment\n"
        "configure_environment(local_ray_auth=False)\n"
        "from mlflow.telemetry.utils import is_telemetry_disabled\n"
        "print(is_telemetry_disabled())\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "UNITRAIN_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"
