"""What a job's Ray workers receive from the job's process: settings in the open, secrets apart.

Ray shows a job's runtime environment to anyone who can read its state API or
dashboard, so only variables that hold no secret travel there (unitrain's,
MLflow's and Prefect's settings). Credentials (a variable whose name says
password, token, secret, key, auth or credential, or a URL with a password in
it) go into a file readable by the job's user only, in the storage folder
(shared storage on a multi-node cluster); the workers get its path and read it
when a step or a trial starts. The file is removed when the job's run ends.

Prefect reads its own settings when it is imported, before a worker can read
the file: on a remote cluster, set ``PREFECT_API_KEY`` on the worker nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from unitrain.settings import settings

__all__ = ["is_secret", "load_worker_secrets", "public_environment", "worker_secrets"]

# (AWS_: Ray Tune used to hand trials the driver's AWS credentials; they travel
# with the other secrets now)
_FORWARDED_PREFIXES = ("UNITRAIN_", "MLFLOW_", "PREFECT_", "AWS_")
_SECRET_WORDS = (
    "PASSWORD",
    "PASSWD",
    "USERNAME",
    "TOKEN",
    "SECRET",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "PRIVATE",
)
# Where each process's own state lives: never a worker's business.
_NOT_FORWARDED = {"PREFECT_HOME", "UNITRAIN_WORKER_SECRETS"}


def is_secret(name: str, value: str) -> bool:
    """Whether a variable holds a credential, by its name or (a URL with a password) its value."""
    if any(word in name.upper() for word in _SECRET_WORDS):
        return True
    if "://" in value:
        try:
            return bool(urlsplit(value).password)
        except ValueError:
            return True  # unparsable: do not show it
    return False


def _forwarded(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in environ.items()
        if name.startswith(_FORWARDED_PREFIXES) and value and name not in _NOT_FORWARDED
    }


def public_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The forwarded variables that hold no secret."""
    found = _forwarded(os.environ if environ is None else environ)
    return {name: value for name, value in found.items() if not is_secret(name, value)}


@contextlib.contextmanager
def worker_secrets() -> Iterator[dict[str, str]]:
    """Write this process's secrets for its workers; yield the variables that point at them."""
    secrets = {n: v for n, v in _forwarded(os.environ).items() if is_secret(n, v)}
    if not secrets:
        yield {}
        return
    folder = settings().storage_dir() / ".secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    path = folder / f"{uuid.uuid4().hex}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(secrets, handle)
    try:
        yield {"UNITRAIN_WORKER_SECRETS": str(path)}
    finally:
        path.unlink(missing_ok=True)


def load_worker_secrets() -> None:
    """In a Ray worker: put the job's secrets into this process's environment."""
    path = settings().worker_secrets_file
    if path is None:
        return
    with contextlib.suppress(OSError, ValueError):
        os.environ.update(json.loads(Path(path).read_text()))
