"""Configuration: every ``UNITRAIN_*`` variable, read in one place, when asked.

:func:`settings` reads the environment each time it is called (it is cheap),
so nothing is frozen at import time and a test or a caller can change a
variable before the next call. :data:`VARIABLES` documents each variable; the
README's table is checked against it.

Everything unitrain writes locally lives under one folder, ``UNITRAIN_HOME``
(default ``~/.unitrain``): the MLflow SQLite store and artifacts, the Prefect
database, the dataset catalog and cache, and the trial folders. Pointing
``MLFLOW_TRACKING_URI``, ``RAY_ADDRESS`` or ``PREFECT_API_URL`` at real servers
replaces the matching embedded default.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VARIABLES",
    "Settings",
    "Variable",
    "configure_environment",
    "enable_local_ray_auth",
    "ray_auth_environment",
    "settings",
]


@dataclass(frozen=True)
class Variable:
    """One environment variable unitrain reads."""

    name: str
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("UNITRAIN_HOME", "~/.unitrain", "where every local store lives"),
    Variable(
        "UNITRAIN_STORAGE",
        "$UNITRAIN_HOME/runs",
        "job and trial model folders; shared storage when Ray has several nodes",
    ),
    Variable(
        "UNITRAIN_REGISTERED_MODEL",
        "unitrain",
        "the MLflow registered model whose versions are the model IDs",
    ),
    Variable(
        "UNITRAIN_ARTIFACT_ROOT",
        "$UNITRAIN_HOME/mlflow/artifacts",
        "artifact location of the embedded MLflow store (a tracking server picks its own)",
    ),
    Variable(
        "UNITRAIN_MLFLOW_UI_URL",
        "http://127.0.0.1:5000",
        "the MLflow UI that links in Prefect summaries point at",
    ),
    Variable(
        "UNITRAIN_STORE_RETRY_S",
        "60",
        "how long MLflow calls retry a locked or unreachable store before the job fails",
    ),
    Variable(
        "UNITRAIN_IDLE_S",
        "600",
        "seconds the local Prefect API and Ray (started by the first job) stay up unused",
    ),
    Variable(
        "UNITRAIN_MAX_TRIALS", "10000", "the most trials one job may ask for (grids included)"
    ),
    Variable(
        "UNITRAIN_DATASET_ROOTS",
        "anywhere",
        "folders (separated by ':') that `unitrain datasets add` may register files from",
    ),
    Variable(
        "UNITRAIN_DATASET_SCHEMES",
        "file,bundled,s3,gs,gcs,az,abfs,http,https",
        "URI schemes `unitrain datasets add` accepts",
    ),
    Variable("UNITRAIN_RAY_NUM_CPUS", "all cores", "CPUs of the local Ray a job starts"),
    Variable(
        "UNITRAIN_WORKER_SECRETS",
        "(set by unitrain)",
        "in a Ray worker: the file holding the job's credentials, readable by its owner only",
    ),
    Variable("UNITRAIN_RAY_DASHBOARD", "0", "1 starts the local Ray's dashboard"),
    Variable(
        "UNITRAIN_CACHE",
        "$XDG_CACHE_HOME/unitrain or ~/.cache/unitrain",
        "what this machine's new homes start from (a migrated, empty Prefect database)",
    ),
)

_KNOWN = {v.name for v in VARIABLES}


_DEFAULT_SCHEMES = "file,bundled,s3,gs,gcs,az,abfs,http,https"


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name}: must be at least 1, got {raw!r}")
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not 0 <= value < 1e9:
        raise ValueError(f"{name}: must be between 0 and 1e9 seconds, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """unitrain's configuration as read from one environment."""

    home: Path
    storage: Path
    registered_model: str
    artifact_root: Path
    mlflow_ui_url: str
    store_retry_s: float
    max_trials: int
    dataset_roots: tuple[Path, ...]
    dataset_schemes: frozenset[str]
    idle_s: float
    ray_num_cpus: int | None
    ray_dashboard: bool
    #: shared by every home of this machine: what a new home can start from
    cache: Path
    worker_secrets_file: str | None
    #: the real servers, when configured (else the embedded defaults are used)
    mlflow_tracking_uri_configured: str | None
    ray_address: str | None
    prefect_api_url: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        home = Path(environ.get("UNITRAIN_HOME") or Path.home() / ".unitrain").expanduser()
        home = home.resolve()
        storage = environ.get("UNITRAIN_STORAGE")
        artifacts = environ.get("UNITRAIN_ARTIFACT_ROOT")
        cpus = environ.get("UNITRAIN_RAY_NUM_CPUS", "").strip()
        return cls(
            home=home,
            storage=Path(storage).expanduser().resolve() if storage else home / "runs",
            registered_model=environ.get("UNITRAIN_REGISTERED_MODEL") or "unitrain",
            artifact_root=(
                Path(artifacts).expanduser().resolve()
                if artifacts
                else home / "mlflow" / "artifacts"
            ),
            mlflow_ui_url=(environ.get("UNITRAIN_MLFLOW_UI_URL") or "http://127.0.0.1:5000").rstrip(
                "/"
            ),
            store_retry_s=_seconds(environ, "UNITRAIN_STORE_RETRY_S", 60.0),
            max_trials=_positive_int(environ, "UNITRAIN_MAX_TRIALS", 10_000),
            dataset_roots=tuple(
                Path(p).expanduser().resolve()
                for p in environ.get("UNITRAIN_DATASET_ROOTS", "").split(os.pathsep)
                if p.strip()
            ),
            dataset_schemes=frozenset(
                s.strip().lower()
                for s in (environ.get("UNITRAIN_DATASET_SCHEMES") or _DEFAULT_SCHEMES).split(",")
                if s.strip()
            ),
            idle_s=_seconds(environ, "UNITRAIN_IDLE_S", 600.0),
            ray_num_cpus=_positive_int(environ, "UNITRAIN_RAY_NUM_CPUS", 1) if cpus else None,
            ray_dashboard=environ.get("UNITRAIN_RAY_DASHBOARD", "").strip() == "1",
            cache=Path(
                environ.get("UNITRAIN_CACHE")
                or Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unitrain"
            )
            .expanduser()
            .resolve(),
            worker_secrets_file=environ.get("UNITRAIN_WORKER_SECRETS") or None,
            mlflow_tracking_uri_configured=environ.get("MLFLOW_TRACKING_URI") or None,
            ray_address=environ.get("RAY_ADDRESS") or None,
            prefect_api_url=environ.get("PREFECT_API_URL") or None,
        )

    # -- folders (created on first use) -------------------------------------

    def home_dir(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def datasets_dir(self) -> Path:
        """The catalog and its cache (created on first write, not on read)."""
        return self.home / "datasets"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def storage_dir(self) -> Path:
        """Job and trial outputs, created on first use."""
        self.storage.mkdir(parents=True, exist_ok=True)
        return self.storage

    def mlflow_tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI`` if set, else SQLite inside the home folder."""
        if self.mlflow_tracking_uri_configured:
            return self.mlflow_tracking_uri_configured
        folder = self.home_dir() / "mlflow"
        folder.mkdir(exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    def mlflow_artifact_root(self) -> str:
        """Where the embedded MLflow store keeps artifacts (a tracking server picks its own)."""
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        return self.artifact_root.as_uri()

    def local_cpus(self) -> int:
        """The CPUs a local Ray started by a job gets."""
        return self.ray_num_cpus or os.cpu_count() or 1


def settings() -> Settings:
    """The configuration of this process, read from its environment now."""
    return Settings.from_environ(os.environ)


def configure_environment(*, local_ray_auth: bool = True) -> None:
    """Fill in the embedded defaults before Prefect, MLflow or Ray are imported.

    Prefect reads its settings when it is imported, and Ray its token settings,
    so this must run first. Values the user already set are left alone. With
    ``local_ray_auth`` (unless ``RAY_ADDRESS`` names a cluster) the home's local
    Ray token is made if missing and pointed at (see :func:`enable_local_ray_auth`).
    """
    current = settings()
    os.environ.setdefault("UNITRAIN_HOME", str(current.home_dir()))
    os.environ.setdefault("MLFLOW_TRACKING_URI", current.mlflow_tracking_uri())
    if not current.prefect_api_url:
        os.environ.setdefault("PREFECT_HOME", str(current.prefect_home))
    # No internet here, and nobody asked to be measured.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # MLflow reads DO_NOT_TRACK only as "true"; left on, every process that logs
    # starts its telemetry threads and asks a server abroad for their settings.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if local_ray_auth:
        enable_local_ray_auth()
    # Ray's native signal handler turns a SIGTERM into an abort (exit -6); without
    # it, Ray's Python handler raises SystemExit and the job ends cleanly.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    # Ray Tune runs in the flow's own process: Ctrl-C must reach unitrain (which
    # records the interrupt), not Tune's own handler; and only the loggers asked for.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # MLflow's own HTTP retries would hide minutes of outage inside one call;
    # unitrain retries store calls itself, for UNITRAIN_STORE_RETRY_S.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # An MLflow server's background job runner is for features unitrain does not use.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


def ray_auth_environment(*, create: bool = False) -> dict[str, str]:
    """The variables that let a process join the home's local Ray (token auth, its token).

    The token file is made (readable by its owner only) with ``create``, when a
    cluster starts or a job is about to join one: only its path is needed before then.
    """
    token = settings().home / "local" / "ray_auth_token"
    if create and not token.exists():
        token.parent.mkdir(parents=True, exist_ok=True)
        temporary = token.with_name(f".ray_auth_token.{os.getpid()}")
        temporary.write_text(secrets.token_hex(32))
        temporary.chmod(0o600)
        os.replace(temporary, token)
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def enable_local_ray_auth() -> None:
    """Point Ray at the home's local-cluster token (made if missing), unless a cluster is named.

    Ray reads its token settings when it is imported, so this runs before.
    """
    if settings().ray_address:
        return
    for name, value in ray_auth_environment(create=True).items():
        os.environ.setdefault(name, value)
