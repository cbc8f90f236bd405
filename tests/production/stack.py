"""The production stack, started and stopped by the tests, on loopback: PostgreSQL, a
Prefect server on it, an MLflow tracking server with proxied artifacts, and a two-node
Ray cluster started with ``ray start``.

Every server is a process group of its own, so that stopping it stops what it
started; :meth:`ProductionStack.stop` then checks nothing it started is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.servers import MlflowServer, _free_port, _wait_for

__all__ = ["ProductionStack"]

BIN = Path(sys.executable).parent


def _as_postgres(command: list[str]) -> list[str]:
    """``initdb`` and ``postgres`` refuse to run as root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _plain_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        **extra,
    )
    return env


@dataclass
class ProductionStack:
    root: Path
    pg_port: int = field(default_factory=_free_port)
    prefect_port: int = field(default_factory=_free_port)
    ray_port: int = field(default_factory=_free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    mlflow: MlflowServer | None = None
    pg_dir: Path | None = None
    started_pids: set[int] = field(default_factory=set)
    ray_before: set[int] = field(default_factory=set)

    # -- the servers -----------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._start_postgres()
        self._start_prefect()
        self.mlflow = MlflowServer(self.root / "mlflow", proxied_artifacts=True)
        self.mlflow.folder.mkdir()
        self.mlflow.start()
        self._start_ray()

    def _log(self, name: str):  # noqa: ANN202
        return (self.root / f"{name}.log").open("ab")

    def _start_postgres(self) -> None:
        # Its own folder in /tmp, which the postgres user can reach (pytest's are 0700).
        self.pg_dir = Path(tempfile.mkdtemp(prefix="unitrain-pg-"))
        data = self.pg_dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres(["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-N"]),
            check=True,
            capture_output=True,
        )
        self._spawn(
            "postgres",
            _as_postgres(
                [
                    "postgres",
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.pg_port),
                    "-k",
                    str(self.pg_dir),
                    "-F",
                ]
            ),  # fmt: skip
            env=_plain_env(),
        )

        def accepting() -> bool:
            done = subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.pg_port),
                    "-U",
                    "postgres",
                    "-c",
                    "select 1",
                ],  # fmt: skip
                capture_output=True,
            )
            return done.returncode == 0

        _wait_for(accepting, 60, "PostgreSQL")
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "prefect"],
            check=True,
            capture_output=True,
        )

    @property
    def prefect_database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/prefect"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def _start_prefect(self) -> None:
        env = _plain_env(
            PREFECT_HOME=str(self.root / "prefect"),
            PREFECT_API_DATABASE_CONNECTION_URL=self.prefect_database_url,
            PREFECT_UI_ENABLED="false",
        )
        self._spawn(
            "prefect",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.prefect_port),
            ],  # fmt: skip
            env=env,
        )

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.prefect_api_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(healthy, 180, "the Prefect server")

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def ray_auth(self) -> dict[str, str]:
        """The cluster's token auth, as an operator sets it on every node and client."""
        token = self.root / "ray_auth_token"
        if not token.exists():
            token.write_text(secrets.token_hex(32))
            token.chmod(0o600)
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    def _ray(self, *args: str) -> None:
        done = subprocess.run(
            [str(BIN / "ray"), "start", *args, "--disable-usage-stats"],
            capture_output=True,
            text=True,
            env=_plain_env(RAY_USAGE_STATS_ENABLED="0", **self.ray_auth),
            timeout=180,
        )
        assert done.returncode == 0, f"ray start {' '.join(args)}:\n{done.stderr[-3000:]}"

    def _start_ray(self) -> None:
        before = self.ray_before = _ray_pids()
        # The head runs the jobs' drivers; trials ask for the worker's resource.
        self._ray(
            "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.ray_port),
            "--num-cpus", "1", "--include-dashboard", "false", "--resources", '{"head": 1}',
        )  # fmt: skip
        self._ray(
            "--address", self.ray_address, "--node-ip-address", "127.0.0.1",
            "--num-cpus", "2", "--resources", '{"worker": 2}',
        )  # fmt: skip
        self.started_pids |= _ray_pids() - before
        _wait_for(lambda: len(self.ray_nodes()) == 2, 60, "two Ray nodes")

    def ray_nodes(self) -> list[dict]:
        """The cluster's live nodes (asked by a Ray driver of its own)."""
        script = (
            f"import json, ray; ray.init(address={self.ray_address!r}, logging_level='ERROR');"
            "print(json.dumps([{'id': n['NodeID'], 'resources': n['Resources']}"
            " for n in ray.nodes() if n['Alive']]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True,
            env=_plain_env(**self.ray_auth), timeout=120,
        )  # fmt: skip
        if done.returncode:
            return []
        return json.loads(done.stdout.strip().splitlines()[-1])

    def worker_node(self) -> str:
        return next(n["id"] for n in self.ray_nodes() if "worker" in n["resources"])

    def kill_worker_node(self, node_id: str) -> int:
        """SIGKILL the worker node's raylet; return its PID."""
        for process in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(process.info["cmdline"] or [])
            if "raylet" in (process.info["name"] or "") and node_id in line:
                process.kill()
                return process.pid
        raise AssertionError(f"no raylet of node {node_id} found")

    # -- jobs ----------------------------------------------------------------

    def env(self, home: Path) -> dict[str, str]:
        """What a user sets to use this stack: the README's variables, nothing else."""
        assert self.mlflow is not None
        return _plain_env(
            UNITRAIN_HOME=str(home),
            PREFECT_API_URL=self.prefect_api_url,
            MLFLOW_TRACKING_URI=self.mlflow.url,
            RAY_ADDRESS=self.ray_address,
            **self.ray_auth,
        )

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(
            command, stdout=self._log(name), stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        self.started_pids.add(process.pid)

    # -- stopping ------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop everything, newest first; return what is still running (nothing, if clean)."""
        subprocess.run(
            [str(BIN / "ray"), "stop", "--force"], capture_output=True,
            env=_plain_env(**self.ray_auth), timeout=120,
        )  # fmt: skip
        if self.mlflow is not None:
            self.mlflow.stop()
        for process in reversed(self.processes):
            if process.poll() is None:
                with _quiet():
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
        deadline = time.monotonic() + 30
        left: list[str] = []
        while time.monotonic() < deadline:
            left = [
                f"{p.pid} {' '.join(p.cmdline()[:3])}"
                for p in _alive(self.started_pids | (_ray_pids() - self.ray_before))
            ]
            if not left:
                break
            time.sleep(0.5)
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
        return left


def _ray_pids() -> set[int]:
    """Processes of a Ray node on this machine (GCS, raylet, workers, ...)."""
    found = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "gcs_server" in line or "raylet" in line or "ray::" in line or "ray/_private" in line:
            found.add(process.pid)
    return found


def _alive(pids: set[int]) -> list[psutil.Process]:
    alive = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]
