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

Run as ``python -m unitrain.runtime.local_stack`` (by :func:`ensure`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
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
from unitrain.settings import settings

__all__ = [
    "API_ONLY_ENVIRONMENT",
    "LocalStack",
    "PrefectApi",
    "abandon_early_start",
    "ensure",
    "lease",
    "ray_auth_environment",
    "start_early",
    "stop",
]

HOST = "127.0.0.1"
_CHECK_EVERY_S = 1.0
# Leases this process holds: depth of nesting (the CLI and the task runner both lease).
_DEPTH = [0]


@dataclass(frozen=True)
class LocalStack:
    """Where the running stack answers."""

    pid: int
    api_url: str
    ray_address: str


def _folder() -> Path:
    folder = settings().home_dir() / "local"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _state_file() -> Path:
    return _folder() / "stack.json"


def ray_auth_environment(*, create: bool = False) -> dict[str, str]:
    """The variables that let a process join the local Ray (token auth, the home's token).

    The token file is made (readable by its owner only) with ``create``, when a
    cluster starts: only its path is needed before then.
    """
    token = settings().home / "local" / "ray_auth_token"
    if create and not token.exists():
        token.parent.mkdir(parents=True, exist_ok=True)
        temporary = token.with_name(f".ray_auth_token.{os.getpid()}")
        temporary.write_text(secrets.token_hex(32))
        temporary.chmod(0o600)
        os.replace(temporary, token)
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def _healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    import httpx

    try:
        # Plain HTTP on loopback: no proxy, and no TLS context to build (a quarter second).
        with httpx.Client(verify=False, trust_env=False, timeout=timeout_s) as client:
            return client.get(f"{api_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def running() -> LocalStack | None:
    """This home's stack, if it is up and answering."""
    try:
        state = json.loads(_state_file().read_text())
        stack = LocalStack(int(state["pid"]), state["api_url"], state["ray_address"])
    except (OSError, ValueError, KeyError):
        return None
    if not is_alive(stack.pid) or not _healthy(stack.api_url):
        return None
    return stack


def _needs_ray() -> bool:
    """A job that names a Ray cluster (RAY_ADDRESS) needs only the stack's Prefect API."""
    return not settings().ray_address


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One process at a time decides whether to start the stack."""
    with open(_folder() / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _client_mark() -> Path:
    """This process's lease: a file named after its process ID."""
    clients = _folder() / "clients"
    clients.mkdir(exist_ok=True)
    return clients / str(os.getpid())


@contextlib.contextmanager
def lease() -> Iterator[LocalStack]:
    """Hold the stack for the duration, starting it if it is not up."""
    mark = _client_mark()
    mark.write_text(str(time.time()))
    _DEPTH[0] += 1
    try:
        yield ensure()
    finally:
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
    from unitrain.runtime.prefect_server import served_api_url

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
    _state_file().unlink(missing_ok=True)
    with open(log_dir / "local-stack.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "unitrain.runtime.local_stack", "--port", str(_free_port())],
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
    from unitrain.runtime.worker_env import is_secret

    return {name: value for name, value in environ.items() if not is_secret(name, value)}


def stop(timeout_s: float = 30.0) -> bool:
    """Stop this home's stack if it runs; return whether one was stopped."""
    try:
        pid = int(json.loads(_state_file().read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    if not is_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


# -- the stack's own process ----------------------------------------------------


class _Activity:
    """Wraps the ASGI app to remember when it last served a request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            self.last = time.monotonic()
        await self.app(scope, receive, send)


def _live_clients() -> int:
    count = 0
    for mark in (_folder() / "clients").glob("*"):
        try:
            pid = int(mark.name)
        except ValueError:
            continue
        if is_alive(pid):
            count += 1
        else:
            mark.unlink(missing_ok=True)  # a job that was killed
    return count


#: Like Prefect's own temporary server: the API only, no UI, no background services.
#: Set before Prefect is imported, which reads them.
API_ONLY_ENVIRONMENT = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


class PrefectApi:
    """Prefect's API server, on a database started from a kept copy, in a thread of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.activity: _Activity | None = None
        self.server: Any = None
        self.thread = threading.Thread(target=self._run, name="prefect-api", daemon=True)

    def _run(self) -> None:
        import uvicorn
        from prefect.server.api.server import create_app

        from unitrain.runtime.prefect_db_template import database_path, seed_from_template

        database = database_path()
        if database is not None:
            seed_from_template(database)  # skips Prefect's migrations on a new home
        self.activity = _Activity(create_app(ephemeral=True, final=True))
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.activity, host=HOST, port=self.port, log_level="error", lifespan="on"
            )
        )
        self.server.run()

    @property
    def started(self) -> bool:
        return self.server is not None and bool(self.server.started)


@contextlib.contextmanager
def _sigterm_kept_from_ray() -> Iterator[None]:
    """Keep this process's SIGTERM handler while ``ray.init`` runs.

    ``ray.init`` installs a handler that raises ``SystemExit`` wherever the main
    thread is. A SIGTERM that lands while it imports is swallowed by the import
    machinery ("Exception ignored") and leaves a module lock held; the Prefect
    API's thread, importing too, then waits for that lock forever, and the
    stack never stops.
    """
    import ray._private.utils as ray_utils

    installs = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = installs


def _serve(port: int) -> None:
    # From the first moment: a job refused while the stack starts stops it (SIGTERM).
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    os.environ.update(API_ONLY_ENVIRONMENT)
    # Prefect's import and database, and Ray's processes, start side by side:
    # each takes seconds, much of it waiting.
    api = PrefectApi(port)
    api.thread.start()
    import ray

    from unitrain.runtime.ray_cluster import ray_init_kwargs

    ray_address = ""
    if _needs_ray() and not stopping.is_set():
        with _sigterm_kept_from_ray():
            ray.init(**ray_init_kwargs(local=True))
        ray_address = str(ray.get_runtime_context().gcs_address)
    api_url = f"http://{HOST}:{port}/api"
    while not api.started and api.thread.is_alive() and not stopping.is_set():
        time.sleep(0.05)
    try:
        if api.started and not stopping.is_set():
            _announce(api_url, ray_address)
        idle_s = settings().idle_s
        while not stopping.wait(_CHECK_EVERY_S) and api.thread.is_alive():
            assert api.activity is not None
            if _live_clients() == 0 and time.monotonic() - api.activity.last > idle_s:
                break
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(_state_file().read_text()).get("pid") == os.getpid():
                _state_file().unlink()
        if api.server is not None:
            api.server.should_exit = True
        if ray.is_initialized():
            ray.shutdown()
        api.thread.join(timeout=10)


def _announce(api_url: str, ray_address: str) -> None:
    """Tell jobs where the stack answers (the state file), and keep the database's template."""
    from unitrain.runtime.prefect_db_template import database_path, keep_template

    state = {"pid": os.getpid(), "api_url": api_url, "ray_address": ray_address}
    temporary = _state_file().with_name(f".stack.json.{os.getpid()}")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, _state_file())
    (_folder() / "clients").mkdir(exist_ok=True)
    database = database_path()
    if database is not None:  # for the next new home on this machine
        threading.Thread(target=keep_template, args=(database,), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="unitrain's local Prefect API and Ray")
    parser.add_argument("--port", type=int, required=True)
    _serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
