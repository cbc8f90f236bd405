"""``unitrain run`` as a user runs it: subprocesses on one fresh home, the embedded defaults.

The first command starts the home's local stack; the later ones reuse it, as a
user's do. It is stopped (``unitrain stop``) when the module ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


def unitrain(
    home: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(
        UNITRAIN_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", UNITRAIN_IDLE_S="120"
    )
    env.update(extra_env or {})
    command = [sys.executable, "-m", "unitrain.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cli") / "home"
    yield home
    stopped = unitrain(home, "stop")
    assert stopped.returncode == 0, stopped.stderr


@pytest.mark.slow  # 150 epochs; `make test` resumes from a checkpoint in test_train_flow.py
def test_seed_training_examples_run_from_the_command_line(home, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits456.npz", X=digits.data.astype("float32"), y=digits.target)
    added = unitrain(home, "datasets", "add", str(tmp_path / "digits456.npz"), "--id", "456")
    assert added.returncode == 0, added.stderr

    first = unitrain(home, "run", str(EXAMPLES / "simple_training.json"))
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(first.stdout)  # stdout holds the result JSON and nothing else
    assert set(result) == {"model_id"}
    assert "database is locked" not in first.stderr

    resume = json.loads((EXAMPLES / "resume_from_checkpoint.json").read_text())
    resume["params"]["checkpoint"] = result["model_id"]
    (tmp_path / "resume.json").write_text(json.dumps(resume))
    second = unitrain(home, "run", str(tmp_path / "resume.json"))
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout)["model_id"] == result["model_id"] + 1
    assert f"resuming from model {result['model_id']}" in second.stderr

    listing = unitrain(home, "models", "list", "--json")
    models = {m["model_id"]: m for m in json.loads(listing.stdout)}
    assert models[result["model_id"]]["job"] == "resnet50_training"
    assert models[result["model_id"] + 1]["job"] == "resnet50_continued"
    assert models[result["model_id"] + 1]["dataset"] == "456"


def test_deprecated_tune_action_still_runs_with_a_warning(home, tmp_path):
    job = {
        "action": "tune",
        "plugin": "synthetic",
        "params": {
            "name": "old_style_tuning",
            "dataset": 1,
            "hyperparameter": [
                {"name": "x", "type": "uniform", "min": 0, "max": 1},
                {"name": "y", "type": "quniform", "min": 0, "max": 1},
            ],
            "tune_config": {"mode": "max", "metric": "score", "num_samples": 2},
        },
    }
    (tmp_path / "old.json").write_text(json.dumps(job))
    done = unitrain(home, "run", str(tmp_path / "old.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'warning: action "tune" is deprecated' in done.stderr
    result = json.loads(done.stdout)
    assert len(result["trial_models"]) == 2 and result["model_id"] in {
        m["model_id"] for m in result["trial_models"]
    }
    assert "y: no q given, using q=0.01" in done.stderr
    # Without a terminal: the job's own lines, plain and timestamped, and progress lines.
    assert "| PROGRESS | old_style_tuning: 100%" in done.stderr
    assert "best trial " in done.stderr


def test_without_a_terminal_stderr_has_the_jobs_lines_and_no_library_output(home, tmp_path):
    job = {
        "action": "train",
        "params": {
            "name": "plain_output",
            "dataset": 1,
            "is_tune": True,
            "plugin": "synthetic",
            "hyperparameter": {"messages": 2},
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {
                "metric": "score",
                "search_alg": {"name": "optunasearch"},  # Optuna logs when a study starts
                "num_samples": 3,
                "max_concurrent_trials": 2,
            },
        },
    }
    (tmp_path / "plain.json").write_text(json.dumps(job))
    done = unitrain(home, "run", str(tmp_path / "plain.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\x1b" not in done.stderr
    line = re.compile(r"^\d\d:\d\d:\d\d \| [A-Z]+ +\| ")
    for text in done.stderr.splitlines():
        assert line.match(text) or text.startswith(("logs: ", "note: ", "warning: ")), text
    trial_lines = re.findall(r"\| \[trial (\w+)\] message \d of 2$", done.stderr, re.M)
    assert len(trial_lines) == 6 and len(set(trial_lines)) == 3
    # ... while the log file has the libraries' output too
    log = (home / "runs" / "plain_output" / "run.log").read_text()
    # Prefect's task runner's line (joined early when the stack was up already, or not)
    assert "Ray instance at" in log
    assert "Ray instance at" not in done.stderr


def test_on_a_terminal_the_job_shows_its_bar_and_trials_and_logs_go_to_a_file(home, tmp_path):
    """A real pseudo-terminal as stderr; stdout stays a pipe for the result JSON."""
    import pty
    import select

    job = {
        "name": "on_a_terminal",
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameter": {"work_s": 0.3},
        "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        "tune_config": {"metric": "score", "mode": "max", "num_samples": 6},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(UNITRAIN_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "unitrain.cli", "run", str(tmp_path / "job.json")],
        env=env,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the job closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(timeout=300) == 0, shown.decode(errors="replace")[-3000:]
    assert process.stdout is not None
    result = json.loads(process.stdout.read())
    assert len(result["trial_models"]) == 6

    screen = shown.decode(errors="replace")
    log_file = home / "runs" / "on_a_terminal" / "run.log"
    assert f"logs: {log_file}" in screen
    assert "[" + "#" * 30 + "] 100.0%" in screen  # the bar, redrawn in place
    assert "trials: 6 terminated" in screen
    assert "★ " in screen and "score" in screen
    # The libraries' logs went to the file, not to the terminal.
    assert "Finished in state Completed" not in screen
    assert "Finished in state Completed" in log_file.read_text()

    # unitrain jobs: the job as recorded, and its flow run in the real Prefect API.
    listed = {j["name"]: j for j in json.loads(unitrain(home, "jobs", "--json").stdout)}
    job = listed["on_a_terminal"]
    assert job["mode"] == "tuning" and job["state"] == "finished"
    assert sorted(job["model_ids"]) == sorted(m["model_id"] for m in result["trial_models"])
    assert job["model_id"] == result["model_id"]
    shown = json.loads(unitrain(home, "jobs", "show", "on_a_terminal", "--json").stdout)
    flow_run_id = shown["prefect_flow_runs"][-1]
    assert shown["links"]["prefect"].endswith(f"/runs/flow-run/{flow_run_id}")
    assert len(shown["trials"]) == 6
    api_url = json.loads((home / "local" / "stack.json").read_text())["api_url"]
    flow_run = httpx.get(f"{api_url}/flow_runs/{flow_run_id}", timeout=10).json()
    assert flow_run["name"] == "on_a_terminal" and flow_run["state"]["type"] == "COMPLETED"


def _stack_processes(home: Path) -> list[int]:
    """Process IDs of the local stacks serving ``home`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"unitrain.runtime.stack_server" in command and (
            f"UNITRAIN_HOME={home}".encode() in environ
        ):
            found.append(int(entry.name))
    return found


def test_a_job_refused_while_the_stack_starts_stops_the_stack_again(tmp_path):
    import time

    home = tmp_path / "home"  # nothing running: the job starts the stack while it is planned
    job = {"name": "refused", "dataset": 1, "plugin": "synthetic", "checkpoint": 9999}
    job["hyperparameter"] = {"work_s": 0}
    (tmp_path / "job.json").write_text(json.dumps(job))

    refused = unitrain(home, "run", str(tmp_path / "job.json"))

    assert refused.returncode == 2
    assert "checkpoint: model 9999 does not exist" in refused.stderr
    assert (home / "logs" / "local-stack.log").exists()  # the stack had begun to start
    deadline = time.monotonic() + 60
    while _stack_processes(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _stack_processes(home) == []
    assert not (home / "local" / "stack.json").exists()
    assert list((home / "local" / "clients").iterdir()) == []


def test_a_flow_takes_over_ray_joined_early_and_its_step_runs_on_the_readied_worker(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", UNITRAIN_IDLE_S="120")
    script = Path(__file__).with_name("early_join.py")
    done = subprocess.run(
        [sys.executable, str(script), str(home), str(tmp_path / "readied")],
        env=env, cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The first step waited for the worker readied while the flow imported, not a new one.
    assert report["step"] == report["readied"] != report["driver"]
    # The flow left Ray and let go of the stack as a flow that joined by itself does.
    assert report["still_joined"] is False
    assert report["lease_held"] is False
    assert "SIGTERM handler is not set" not in done.stderr
