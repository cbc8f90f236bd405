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


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty home folder for one test (unit tests only: workers keep the session's)."""
    monkeypatch.setenv("UNITRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture(scope="session")
def session_home() -> Path:
    return _SESSION_HOME
