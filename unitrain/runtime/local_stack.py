"""The local stack: one Prefect API and one Ray per home, shared by the jobs that run there.

Without ``PREFECT_API_URL`` and ``RAY_ADDRESS`` (and without ``unitrain
serve``), jobs report to a Prefect server and run on a Ray cluster that this
module starts in one background process, on loopback and on the home's
database. The first job that needs them starts them; later jobs reuse them and
do not pay their start-up; ten jobs at once share one Ray instead of starting
ten. The process stops by itself once no job has used it for
``UNITRAIN_IDLE_S`` seconds (default 600); ``unitrain stop`` stops it at once.

It runs in a session of its own, so a Ctrl-C meant for a job never reaches
it. Each job holds a lease (a file named after its process ID) while it runs:
the stack never stops under a live job, and the lease of a job that was killed
is dropped when its process is gone. Ray's token authentication protects the
cluster; the token lives in the home, readable by its owner only.

This module is the jobs' side; the stack's own process is
``unitrain.runtime.stack_server``, which :func:`ensure` starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitrain.errors import UnitrainError
from unitrain.runtime.processes import is_alive
from unitrain.runtime.served import healthy, served_api_url
from unitrain.runtime.stack_files import (
    HOST,
    LocalStack,
    announced,
    clients_folder,
    stack_folder,
    state_file,
)
from unitrain.runtime.worker_env import is_secret
from unitrain.settings import ray_auth_environment, settings

__all__ = ["LocalStack", "abandon_early_start", "ensure", "lease", "running", "start_early", "stop"]

# Leases this process holds: depth of nesting (the CLI and the task runner both lease,
# and ``unitrain run`` may lease from a thread while it joins Ray early).
_DEPTH = [0]
_DEPTH_LOCK = threading.Lock()


def running() -> LocalStack | None:
    """This home's stack, if it is up and answering."""
    stack = announced()
    if stack is None or not is_alive(stack.pid) or not healthy(stack.api_url):
        return None
    return stack


def _needs_ray() -> bool:
    """A job that names a Ray cluster (RAY_ADDRESS) needs only the stack's Prefect API."""
    return not settings().ray_address


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One process at a time decides whether to start the stack."""
    with open(stack_folder() / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _client_mark() -> Path:
    """This process's lease: a file named after its process ID."""
    return clients_folder() / str(os.getpid())


@contextlib.contextmanager
def lease() -> Iterator[LocalStack]:
    """Hold the stack for the duration, starting it if it is not up."""
    mark = _client_mark()
    with _DEPTH_LOCK:
        mark.write_text(str(time.time()))
        _DEPTH[0] += 1
    try:
        yield ensure()
    finally:
        with _DEPTH_LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                mark.unlink(missing_ok=True)


def ensure(timeout_s: float = 240.0) -> LocalStack:
    """This home's stack, started if it is not running (or runs without the Ray it needs)."""
    if _EARLY:  # this process began starting it (start_early) and holds the start lock
        early = _EARLY.pop()
        with early.lock:
            return _wait_for(early.process, timeout_s)
    with _exclusive():
        process = _spawn_if_needed()
        if isinstance(process, LocalStack):
            return process
        return _wait_for(process, timeout_s)


@dataclass
class _EarlyStart:
    process: subprocess.Popen[bytes]
    #: holds the start lock until the stack answers, so no other job starts a second one
    lock: contextlib.ExitStack


# The start this process began and has not yet waited for (at most one).
_EARLY: list[_EarlyStart] = []


def start_early() -> None:
    """Begin starting the stack, if this job will need it, and return without waiting.

    The stack takes seconds to start (tens on a new home); a job's own start
    (imports, planning) overlaps with it. :func:`ensure` waits for it;
    :func:`abandon_early_start` stops it if the job is refused.
    """
    if _EARLY or not _wanted():
        return
    _client_mark().write_text(str(time.time()))  # the stack must not idle out before the lease
    lock = contextlib.ExitStack()
    lock.enter_context(_exclusive())
    process = _spawn_if_needed()
    if isinstance(process, LocalStack):
        lock.close()
    else:
        _EARLY.append(_EarlyStart(process, lock))


def abandon_early_start() -> None:
    """Stop the stack :func:`start_early` began, if nothing waited for it (a refused job)."""
    if not _EARLY:
        return
    early = _EARLY.pop()
    _client_mark().unlink(missing_ok=True)
    with early.lock:
        # It stops its Ray and its API by itself on SIGTERM; the refusal need not wait.
        early.process.terminate()


def _wanted() -> bool:
    """Whether a job run from here will use the stack (for Ray, or for the Prefect API)."""
    if _needs_ray():
        return True
    if settings().prefect_api_url:
        return False
    return served_api_url() is None


def _spawn_if_needed() -> LocalStack | subprocess.Popen[bytes]:
    """The running stack if it will do, else the process just started (hold the start lock)."""
    stack = running()
    if stack is not None and (stack.ray_address or not _needs_ray()):
        return stack
    if stack is not None:  # started for a job on another cluster; now Ray is needed
        stop()
    return _spawn()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _spawn() -> subprocess.Popen[bytes]:
    log_dir = settings().logs_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    state_file().unlink(missing_ok=True)
    with open(log_dir / "local-stack.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "unitrain.runtime.stack_server", "--port", str(_free_port())],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a job's terminal must not stop it
            # It needs no credentials, so it gets none (its Ray's workers inherit its environment).
            env={**_without_secrets(os.environ), **ray_auth_environment(create=True)},
        )
    return process


def _wait_for(process: subprocess.Popen[bytes], timeout_s: float) -> LocalStack:
    """The stack ``process`` runs, once it answers."""
    log_dir = settings().logs_dir
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UnitrainError(
                f"the local Prefect API and Ray exited while starting (code "
                f"{process.returncode}); see {log_dir / 'local-stack.log'}"
            )
        stack = running()
        if stack is not None and stack.pid == process.pid:
            return stack
        time.sleep(0.2)
    process.kill()
    raise UnitrainError(f"the local Prefect API and Ray did not start within {timeout_s:.0f} s")


def _without_secrets(environ: Any) -> dict[str, str]:
    return {name: value for name, value in environ.items() if not is_secret(name, value)}


def stop(timeout_s: float = 30.0) -> bool:
    """Stop this home's stack if it runs; return whether one was stopped."""
    stack = announced()
    if stack is None:
        return False
    pid = stack.pid
    if not is_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
