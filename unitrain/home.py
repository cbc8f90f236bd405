"""The home folder: where unitrain keeps its state on the embedded defaults.

Everything a job writes locally lives under one folder, ``UNITRAIN_HOME``
(default ``~/.unitrain``): the MLflow SQLite store and artifacts, the Prefect
database, the dataset catalog and cache, and the trial folders. Pointing
``MLFLOW_TRACKING_URI``, ``RAY_ADDRESS`` or ``PREFECT_API_URL`` at real servers
replaces the matching embedded default.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "home",
    "mlflow_tracking_uri",
    "mlflow_artifact_root",
    "prefect_home",
    "datasets_dir",
    "storage_dir",
    "configure_environment",
    "worker_environment",
]

# Variables a Ray worker needs to reach the same stores as the driver
# (tracking URI and credentials, Prefect API and auth, unitrain's own).
_FORWARDED_PREFIXES = ("UNITRAIN_", "MLFLOW_", "PREFECT_")


def home() -> Path:
    """The home folder, created on first use."""
    path = Path(os.environ.get("UNITRAIN_HOME") or Path.home() / ".unitrain").expanduser()
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def mlflow_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else SQLite inside the home folder."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = home() / "mlflow"
    folder.mkdir(exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    """Where the embedded MLflow store keeps artifacts (ignored for a tracking server)."""
    folder = home() / "mlflow" / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def prefect_home() -> Path:
    return home() / "prefect"


def datasets_dir() -> Path:
    """The catalog and its cache (created on first write, not on read)."""
    return home() / "datasets"


def storage_dir() -> Path:
    """Job and trial outputs. ``UNITRAIN_STORAGE`` may name shared storage for a cluster."""
    configured = os.environ.get("UNITRAIN_STORAGE")
    folder = Path(configured).expanduser().resolve() if configured else home() / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def configure_environment() -> None:
    """Fill in the embedded defaults before Prefect, MLflow or Ray are imported.

    Prefect reads its settings when it is imported, so this must run first.
    Values the user already set are left alone.
    """
    os.environ.setdefault("UNITRAIN_HOME", str(home()))
    os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_tracking_uri())
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(prefect_home()))
    # No internet here, and nobody asked to be measured.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TQDM_DISABLE", "1")


def worker_environment() -> dict[str, str]:
    """The variables to hand to Ray workers on a remote cluster."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(_FORWARDED_PREFIXES) and value and name != "PREFECT_HOME"
    }
