"""Shared fixtures. The environment is set before Prefect, MLflow or Ray is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="unitrain-tests-"))
os.environ["UNITRAIN_HOME"] = str(_SESSION_HOME)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("RAY_ADDRESS", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# Local Prefect APIs that tests start go away soon after their last job.
os.environ["UNITRAIN_IDLE_S"] = "10"

from unitrain.settings import configure_environment  # noqa: E402

configure_environment()

import pytest  # noqa: E402

#: folders of this test process outside pytest's own tmp_path, removed at its end
_SCRATCH = [_SESSION_HOME]


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    for folder in _SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def empty_mlflow_store() -> Path:
    """An MLflow store whose tables are made, to copy: MLflow's migrations take seconds."""
    import contextlib
    import sqlite3

    from unitrain.stores.registry import ModelRegistry

    path = Path(tempfile.mkdtemp(prefix="unitrain-store-")) / "mlflow.db"
    _SCRATCH.append(path.parent)
    ModelRegistry(tracking_uri=f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the one file
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_store: Path) -> Path:
    """A fresh home folder for one test (unit tests only: workers keep the session's).

    Its MLflow store is a copy of an empty one: the same tables, no experiment of
    unitrain's, no run and no model yet.
    """
    import shutil

    shutil.copyfile(empty_mlflow_store, tmp_path / "mlflow.db")
    monkeypatch.setenv("UNITRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME
