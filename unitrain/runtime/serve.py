"""``unitrain serve``: the local stack on loopback, started and stopped as one.

A Prefect server with its UI (on ``$UNITRAIN_HOME/prefect``), a process work
pool and a worker for the deployments of ``prefect.yaml``, and the MLflow UI on
the job's tracking store. While it runs, ``unitrain run`` reports to this
Prefect server instead of starting its own. Every process it starts is stopped
when it stops (Ctrl-C, SIGTERM), and nothing it did not start is touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from unitrain.errors import UnitrainError
from unitrain.runtime.served import server_file
from unitrain.settings import settings

__all__ = ["ServedStack", "PROJECT_DIR", "WORK_POOL", "protection_notice"]

# The checkout the deployments run from (prefect.yaml lives there).
PROJECT_DIR = Path(__file__).resolve().parents[2]
WORK_POOL = "unitrain"
HOST = "127.0.0.1"


@dataclass
class ServedStack:
    """The processes ``unitrain serve`` runs, on ``host`` (loopback unless asked otherwise)."""

    prefect_port: int = 4200
    mlflow_port: int = 5000
    pool: str = WORK_POOL
    with_mlflow: bool = True
    host: str = HOST
    log_dir: Path = field(default_factory=lambda: settings().logs_dir)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def exposed(self) -> bool:
        """Whether the stack listens beyond this machine's loopback."""
        return self.host not in ("127.0.0.1", "localhost", "::1")

    @property
    def _reachable_host(self) -> str:
        # A stack bound to every interface is still reached here on loopback.
        return HOST if self.host in ("0.0.0.0", "::") else self.host

    @property
    def prefect_ui(self) -> str:
        return f"http://{self._reachable_host}:{self.prefect_port}"

    @property
    def api_url(self) -> str:
        return f"{self.prefect_ui}/api"

    @property
    def mlflow_ui(self) -> str:
        return f"http://{self._reachable_host}:{self.mlflow_port}"

    def environment(self) -> dict[str, str]:
        """What every process of the stack (and every flow run) sees."""
        config = settings()
        env = dict(os.environ)
        env.update(
            UNITRAIN_HOME=str(config.home_dir()),
            UNITRAIN_MLFLOW_UI_URL=self.mlflow_ui,
            MLFLOW_TRACKING_URI=config.mlflow_tracking_uri(),
            PREFECT_HOME=str(config.prefect_home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_API_URL=self.api_url,
        )
        return env

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        if settings().prefect_api_url:
            raise UnitrainError(
                "PREFECT_API_URL is set: unitrain serve starts its own Prefect server; "
                "unset it, or start only a worker against that server "
                f"(prefect worker start --pool {self.pool})"
            )
        _require_free(self.host, self.prefect_port, "--prefect-port")
        if self.with_mlflow:
            _require_free(self.host, self.mlflow_port, "--mlflow-port")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._spawn(
                "prefect-server",
                [
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    self.host,
                    "--port",
                    str(self.prefect_port),
                ],
            )
            _wait_healthy(f"{self.api_url}/health", self.processes["prefect-server"], 180)
            server_file().parent.mkdir(parents=True, exist_ok=True)
            server_file().write_text(
                json.dumps(
                    {
                        "api_url": self.api_url,
                        "ui_url": self.prefect_ui,
                        "pid": self.processes["prefect-server"].pid,
                    }
                )
            )
            self._run_once(
                [
                    "-m",
                    "prefect",
                    "work-pool",
                    "create",
                    self.pool,
                    "--type",
                    "process",
                    "--overwrite",
                ]
            )
            self._spawn(
                "worker",
                [
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    self.pool,
                    "--type",
                    "process",
                    "--name",
                    f"unitrain-{os.getpid()}",
                ],
            )
            if self.with_mlflow:
                self._spawn(
                    "mlflow",
                    [
                        "-m",
                        "mlflow",
                        "server",
                        "--backend-store-uri",
                        settings().mlflow_tracking_uri(),
                        "--default-artifact-root",
                        settings().mlflow_artifact_root(),
                        "--host",
                        self.host,
                        "--port",
                        str(self.mlflow_port),
                        "--workers",
                        "1",
                    ],
                )
                _wait_healthy(f"{self.mlflow_ui}/health", self.processes["mlflow"], 120)
        except BaseException:
            self.stop()
            raise

    def deploy(self) -> None:
        """Register the deployments of ``prefect.yaml`` with this server."""
        self._run_once(["-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR)

    def stop(self) -> None:
        """Stop what this stack started, newest first."""
        for name in reversed(list(self.processes)):
            _terminate(self.processes.pop(name))
        if server_file().exists():
            try:
                if json.loads(server_file().read_text()).get("api_url") == self.api_url:
                    server_file().unlink()
            except ValueError:
                server_file().unlink()

    # -- helpers -----------------------------------------------------------

    def _spawn(self, name: str, arguments: Sequence[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child)
        self.processes[name] = subprocess.Popen(
            [sys.executable, *arguments],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with its children
            cwd=PROJECT_DIR,
        )

    def _run_once(self, arguments: Sequence[str], cwd: Path | None = None) -> None:
        done = subprocess.run(
            [sys.executable, *arguments],
            env=self.environment(),
            cwd=cwd or PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise UnitrainError(
                f"{' '.join(arguments[1:4])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )


def _require_free(host: str, port: int, option: str) -> None:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise UnitrainError(
                f"port {port} on {host} is taken; choose another with {option}"
            ) from None


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UnitrainError(f"{url.rsplit('/', 1)[0]} exited while starting (see its log)")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise UnitrainError(f"{url} did not answer within {timeout_s:.0f} s")


def _terminate(process: subprocess.Popen[bytes], grace_s: float = 15) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def protection_notice(stack: ServedStack) -> str:
    """What protects the stack's APIs, said before anyone relies on it."""
    prefect = (
        "basic authentication (PREFECT_SERVER_API_AUTH_STRING)"
        if os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
        else "NOTHING: anyone who reaches it can run jobs (set PREFECT_SERVER_API_AUTH_STRING)"
    )
    mlflow = (
        "its own authentication (MLFLOW_AUTH_CONFIG_PATH)"
        if os.environ.get("MLFLOW_AUTH_CONFIG_PATH")
        else "NOTHING: anyone who reaches it can read and change models"
    )
    lines = [
        f"unitrain serve listens on {stack.host}, beyond this machine's loopback.",
        f"  Prefect API: protected by {prefect}",
    ]
    if stack.with_mlflow:
        lines.append(f"  MLflow:      protected by {mlflow}")
    lines.append("  See the README's Security section before exposing it to a network.")
    return "\n".join(lines)


def serve_forever(stack: ServedStack, *, deploy: bool) -> None:
    """Start the stack, say where to look, and stop it all on Ctrl-C or SIGTERM."""
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Until the stack is up, Ctrl-C interrupts start(), which stops what it started.
    signal.signal(signal.SIGTERM, _interrupt)
    if stack.exposed:
        print(protection_notice(stack), file=sys.stderr, flush=True)
    print("starting the Prefect server, a worker and the MLflow UI ...", file=sys.stderr)
    stack.start()
    try:
        if deploy:
            stack.deploy()
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        print(
            f"\nPrefect UI:  {stack.prefect_ui}\n"
            + (f"MLflow UI:   {stack.mlflow_ui}\n" if stack.with_mlflow else "")
            + f"work pool:   {stack.pool} (one worker running)\n"
            + f"logs:        {stack.log_dir}\n\n"
            + "In another shell:\n"
            + f"  export PREFECT_API_URL={stack.api_url}\n"
            + ("" if deploy else "  unitrain deploy\n")
            + "  prefect deployment run train/unified --params "
            + '\'{"name": "digits-1", "dataset": 1, "hyperparameter": {"epochs": 10}}\'\n\n'
            + "Ctrl-C stops everything.",
            file=sys.stderr,
            flush=True,
        )
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    raise UnitrainError(f"{name} exited (code {process.returncode}); see its log")
            time.sleep(0.5)
    finally:
        print("stopping ...", file=sys.stderr)
        stack.stop()
