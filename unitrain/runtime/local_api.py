"""The local Prefect API: one server per home, shared by the jobs that run there.

Without ``PREFECT_API_URL`` (and without ``unitrain serve``), jobs report to a
Prefect server this module starts on loopback, on the home's database. It is
started by the first job that needs it and then reused, so later jobs do not
pay its start-up; it stops by itself once no job has used it for
``UNITRAIN_LOCAL_API_IDLE_S`` seconds (default 600). ``unitrain stop`` stops it
at once.

It runs in a session of its own, so a Ctrl-C meant for a job never reaches
it. Each job holds a lease (a file named after its process ID) while it runs:
the server never stops under a live job, and the lease of a job that was
killed is dropped when its process is gone.

Run as ``python -m unitrain.runtime.local_api --port N`` (by :func:`ensure`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unitrain.errors import UnitrainError
from unitrain.settings import settings

__all__ = ["ensure", "lease", "stop", "running_api_url"]

HOST = "127.0.0.1"
_CHECK_EVERY_S = 1.0


def _folder() -> Path:
    folder = settings().prefect_home / "local-api"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _state_file() -> Path:
    return _folder() / "server.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def running_api_url() -> str | None:
    """The URL of this home's local API if its server is up."""
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(state.get("pid", 0) or 0)):
        return None
    return str(state["api_url"]) if _healthy(state["api_url"]) else None


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One process at a time decides whether to start the server."""
    with open(_folder() / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def lease() -> Iterator[str]:
    """Hold the local API for the duration: start it if it is not up; yield its URL."""
    mark = _folder() / "clients" / str(os.getpid())
    mark.parent.mkdir(exist_ok=True)
    mark.write_text(str(time.time()))
    try:
        yield ensure()
    finally:
        mark.unlink(missing_ok=True)


def ensure(timeout_s: float = 180.0) -> str:
    """The URL of this home's local API, starting its server if it is not running."""
    with _exclusive():
        url = running_api_url()
        if url:
            return url
        return _start(timeout_s)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _start(timeout_s: float) -> str:
    port = _free_port()
    log_dir = settings().logs_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "local-api.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "unitrain.runtime.local_api", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the job's terminal must not stop it
            env=dict(os.environ),
        )
    api_url = f"http://{HOST}:{port}/api"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UnitrainError(
                f"the local Prefect API exited while starting (code {process.returncode}); "
                f"see {log_dir / 'local-api.log'}"
            )
        if _healthy(api_url):
            return api_url
        time.sleep(0.2)
    process.kill()
    raise UnitrainError(f"the local Prefect API did not start within {timeout_s:.0f} s")


def stop(timeout_s: float = 20.0) -> bool:
    """Stop this home's local API server if it runs; return whether one was stopped."""
    try:
        pid = int(json.loads(_state_file().read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    if not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


# -- the server process ---------------------------------------------------------


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
        if _alive(pid):
            count += 1
        else:
            mark.unlink(missing_ok=True)  # a job that was killed
    return count


def _serve(port: int) -> None:
    import uvicorn

    # Like Prefect's own temporary server: the API only, no UI, no background services.
    os.environ["PREFECT_UI_ENABLED"] = "0"
    os.environ["PREFECT__SERVER_EPHEMERAL"] = "1"
    os.environ["PREFECT__SERVER_FINAL"] = "1"
    from prefect.server.api.server import create_app

    activity = _Activity(create_app(ephemeral=True, final=True))
    server = uvicorn.Server(
        uvicorn.Config(activity, host=HOST, port=port, log_level="error", lifespan="on")
    )
    idle_s = settings().local_api_idle_s
    (_folder() / "clients").mkdir(exist_ok=True)

    def watch() -> None:
        while not server.should_exit:
            time.sleep(_CHECK_EVERY_S)
            if _live_clients() == 0 and time.monotonic() - activity.last > idle_s:
                server.should_exit = True

    state = {"pid": os.getpid(), "port": port, "api_url": f"http://{HOST}:{port}/api"}
    temporary = _state_file().with_name(f".server.json.{os.getpid()}")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, _state_file())
    threading.Thread(target=watch, name="idle-watch", daemon=True).start()
    try:
        server.run()
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(_state_file().read_text()).get("pid") == os.getpid():
                _state_file().unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="unitrain's local Prefect API server")
    parser.add_argument("--port", type=int, required=True)
    _serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
