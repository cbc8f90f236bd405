"""A job's folder: the lock that holds its name, and the record of how far it got.

Every job has a folder in the storage directory (``$UNITRAIN_STORAGE/<job>``).
While a job runs, one process holds an exclusive ``flock`` on ``job.lock``
there: the kernel releases it when that process ends, however it ends, so a
crashed job never keeps its name. ``job.json`` records the job's parameters
(as a digest), its MLflow run and its state; a job whose record says it did
not finish is resumed when it is run again with the same parameters, and a
finished one is not run a second time.

The lock is re-entrant within a process (``unitrain run`` takes it before it
starts anything; the flow it runs takes it again). On one machine it is
exact; across machines it is as good as the shared file system's ``flock``
(NFSv4 and most cluster file systems honour it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from unitrain.errors import JobValidationError
from unitrain.job.names import job_folder
from unitrain.settings import settings

__all__ = ["JobFolder", "JobRecord", "JobState", "params_digest"]

JobState = Literal["running", "interrupted", "failed", "finished"]

# Locks this process holds: stored job name -> (open lock file, depth).
_HELD: dict[str, list[Any]] = {}


def params_digest(params: dict[str, Any], plugin: str) -> str:
    """A digest of what defines a job's work (its name aside): the same job, run again."""
    relevant = {k: v for k, v in params.items() if k != "name"}
    text = json.dumps({"params": relevant, "plugin": plugin}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobRecord:
    """``job.json``: what a later run of the same job needs to know."""

    job: str
    mode: str
    digest: str
    state: JobState
    #: the job's MLflow run (a tuning job's parent run); kept across resumes
    run_id: str = ""
    flow_runs: list[str] = field(default_factory=list)
    started_at: float = 0.0
    updated_at: float = 0.0
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state == "finished"

    def moved_to(self, state: JobState, **changes: Any) -> JobRecord:
        return replace(self, state=state, updated_at=time.time(), **changes)


class JobFolder:
    """The folder of one job (by its stored name)."""

    def __init__(self, job: str, root: Path | None = None) -> None:
        self.job = job
        self.path = job_folder(root or settings().storage_dir(), job)

    @property
    def record_path(self) -> Path:
        return self.path / "job.json"

    @property
    def tune_path(self) -> Path:
        """Ray Tune's experiment folder (stable across resumes)."""
        return self.path / "ray"

    @property
    def trials_path(self) -> Path:
        return self.path / "trials"

    @property
    def training_path(self) -> Path:
        """A training job's model folder and its latest checkpoint (stable across resumes)."""
        return self.path / "training"

    def disk_usage(self) -> int:
        """Bytes the job's checkpoints, trial folders and models take in the storage."""
        total = 0
        for root, _dirs, files in os.walk(self.path):
            for name in files:
                try:
                    total += (Path(root) / name).stat().st_size
                except OSError:
                    continue  # removed meanwhile
        return total

    # -- record --------------------------------------------------------------

    def record(self) -> JobRecord | None:
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None
        return JobRecord(**data)

    def save(self, record: JobRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.record_path.with_name(f".job.json.{os.getpid()}")
        temporary.write_text(json.dumps(asdict(record), indent=2))
        os.replace(temporary, self.record_path)

    # -- lock ----------------------------------------------------------------

    def holder(self) -> str:
        """Who holds the lock, as the holder wrote it (for messages)."""
        try:
            return (self.path / "job.lock").read_text().strip()
        except OSError:
            return ""

    def is_running(self) -> bool:
        """Whether a process holds the job's name now (a crashed one holds nothing)."""
        if self.job in _HELD:
            return True
        try:
            handle = open(self.path / "job.lock")  # noqa: SIM115 (closed below)
        except OSError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the job's name for the duration; raise at once if another process holds it."""
        held = _HELD.get(self.job)
        if held is not None:
            held[1] += 1
            try:
                yield
            finally:
                held[1] -= 1
            return
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / "job.lock", "a+")  # noqa: SIM115 (held until the job ends)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = self.holder()
            raise JobValidationError(
                f"name: job {self.job!r} is already running"
                + (f" ({holder})" if holder else "")
                + "; wait for it to finish or choose another name"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        _HELD[self.job] = [handle, 1]
        try:
            yield
        finally:
            depth = _HELD[self.job]
            depth[1] -= 1
            if depth[1] == 0:
                del _HELD[self.job]
                handle.close()  # releases the flock
