"""Running ``unitrain`` as users do, in processes the tests can signal and inspect."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNITRAIN = [sys.executable, "-m", "unitrain.cli"]


def clean_environment(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(
        UNITRAIN_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        UNITRAIN_IDLE_S="20",
        **extra,
    )
    return env


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _as_a_foreground_job() -> None:
    """Ctrl-C and Ctrl-\\ act on the job as in a terminal's foreground job.

    A shell without job control starts a background command (``make slow &``,
    a CI step run in the background) with both ignored, and the job would
    inherit that: the Ctrl-C of a fault test would then never reach it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@dataclass
class Job:
    """A ``unitrain run`` in a session of its own, as a terminal runs a foreground job."""

    process: subprocess.Popen[str]
    name: str
    stdout_path: Path
    stderr_path: Path

    def wait(self, timeout_s: float = 300) -> int:
        return self.process.wait(timeout=timeout_s)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def result(self) -> dict[str, Any]:
        return dict(json.loads(self.stdout))

    def ctrl_c(self) -> None:
        """SIGINT to the whole foreground process group, as a terminal sends it."""
        os.killpg(self.process.pid, signal.SIGINT)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


class Home:
    """A ``UNITRAIN_HOME`` and what is in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return clean_environment(self.path, **extra)

    def start(self, job: dict[str, Any], *, env: dict[str, str] | None = None) -> Job:
        name = job["name"]
        folder = self.path.parent / f"job-{name}-{time.monotonic_ns()}"
        folder.mkdir()
        (folder / "job.json").write_text(json.dumps(job))
        out, err = folder / "stdout", folder / "stderr"
        process = subprocess.Popen(
            [*UNITRAIN, "run", str(folder / "job.json")],
            stdout=out.open("w"),
            stderr=err.open("w"),
            env=env or self.env(),
            start_new_session=True,
            preexec_fn=_as_a_foreground_job,
            text=True,
        )
        return Job(process, name, out, err)

    def run(self, job: dict[str, Any], timeout_s: float = 400, **extra: str) -> Job:
        started = self.start(job, env=self.env(**extra) if extra else None)
        started.wait(timeout_s)
        return started

    # -- what the stores hold ----------------------------------------------------

    def trial_results(self, job: str) -> dict[str, dict[str, Any]]:
        folder = self.path / "runs" / job / "trials"
        results = {}
        for path in folder.glob("*/trial.json"):
            try:
                results[path.parent.name] = json.loads(path.read_text())
            except ValueError:
                continue  # being written
        return results

    def finished_trials(self, job: str) -> int:
        return sum(r["status"] == "FINISHED" for r in self.trial_results(job).values())

    def job_record(self, job: str) -> dict[str, Any]:
        return dict(json.loads((self.path / "runs" / job / "job.json").read_text()))

    def mlflow(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path / "mlflow" / "mlflow.db", timeout=30) as db:
            return db.execute(query, args).fetchall()

    def run_statuses(self, job: str) -> list[str]:
        rows = self.mlflow(
            "select r.status from runs r join tags t on t.run_uuid = r.run_uuid "
            "where t.key = 'unitrain.job' and t.value = ?",
            job,
        )
        return [row[0] for row in rows]

    def registered_trials(self, job: str) -> list[str]:
        """The trial ID of every model version of ``job`` (duplicates kept)."""
        rows = self.mlflow(
            "select t.value from model_version_tags t join model_version_tags j "
            "on j.name = t.name and j.version = t.version "
            "where t.key = 'unitrain.trial_id' and j.key = 'unitrain.job' and j.value = ?",
            job,
        )
        return [row[0] for row in rows]

    def flow_run_states(self, job: str) -> list[str]:
        import httpx

        state = json.loads((self.path / "local" / "stack.json").read_text())
        response = httpx.post(
            f"{state['api_url']}/flow_runs/filter",
            json={"flow_runs": {"name": {"any_": [job]}}},
            timeout=30,
        )
        response.raise_for_status()
        return [run["state"]["type"] for run in response.json()]

    def stop_local_stack(self) -> None:
        subprocess.run(
            [*UNITRAIN, "stop"], env=self.env(), capture_output=True, timeout=60, check=False
        )


def ray_processes_of(session_leader: int) -> list[str]:
    """Processes still alive in the session a job was started in."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session_leader:
                continue
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ProcessLookupError):
            continue
        if state != "Z":  # zombies hold nothing
            found.append(f"{entry.name} {command}")
    return found


def tuning_job(name: str, *, trials: int = 6, work_s: float = 2.0, **config: Any) -> dict:
    return {
        "name": name,
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameter": {"work_s": work_s},
        "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        "tune_config": {
            "metric": "score",
            "mode": "max",
            "num_samples": trials,
            "max_concurrent_trials": 2,
            "seed": 3,
            **config,
        },
    }
