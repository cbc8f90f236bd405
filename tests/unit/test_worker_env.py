"""Ray workers get settings in the open and secrets in a file only their owner can read."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from unitrain.runtime.worker_env import (
    is_secret,
    load_worker_secrets,
    public_environment,
    worker_secrets,
)

SECRET_VARIABLES = {
    "MLFLOW_TRACKING_PASSWORD": "pw-1",
    "MLFLOW_TRACKING_TOKEN": "tok-2",
    "PREFECT_API_KEY": "key-3",
    "PREFECT_API_AUTH_STRING": "admin:pw-4",
    "MLFLOW_TRACKING_URI": "https://user:pw-5@mlflow.example",
    "AWS_SECRET_ACCESS_KEY": "aws-6",
}


def test_credentials_are_told_apart_by_name_or_by_a_password_in_a_url():
    for name, value in SECRET_VARIABLES.items():
        assert is_secret(name, value), name
    assert not is_secret("MLFLOW_TRACKING_URI", "https://mlflow.example")
    assert not is_secret("UNITRAIN_HOME", "/home/me/.unitrain")
    assert not is_secret("PREFECT_API_URL", "http://127.0.0.1:4200/api")


def test_only_settings_without_secrets_travel_in_the_open():
    environ = {
        **SECRET_VARIABLES,
        "UNITRAIN_STORAGE": "/mnt/shared",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "PREFECT_HOME": "/home/me/.prefect",
        "HOME": "/home/me",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert public_environment(environ) == {
        "UNITRAIN_STORAGE": "/mnt/shared",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


def test_secrets_go_to_a_private_file_that_workers_read_and_that_is_removed(home, monkeypatch):
    for name, value in SECRET_VARIABLES.items():
        monkeypatch.setenv(name, value)
    with worker_secrets() as pointer:
        path = Path(pointer["UNITRAIN_WORKER_SECRETS"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert json.loads(path.read_text()) == SECRET_VARIABLES
        for name in SECRET_VARIABLES:
            monkeypatch.delenv(name)
        monkeypatch.setenv("UNITRAIN_WORKER_SECRETS", str(path))
        load_worker_secrets()  # as a worker does
        assert {n: os.environ[n] for n in SECRET_VARIABLES} == SECRET_VARIABLES
    assert not path.exists()
