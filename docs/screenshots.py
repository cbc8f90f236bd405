"""Retake the README's pictures from a real served stack, with headless Chromium.

Usage: python docs/screenshots.py [--chromium PATH] [--out DIR]   (make screenshots)

On a fresh home in a temporary folder: starts ``unitrain serve`` (Prefect
server and UI, MLflow UI), runs a small tuning job of the bundled PyTorch
plugin with ``unitrain run``, then saves into ``docs/images/`` (or ``--out``):

- ``prefect-flow-run.png``: the job's flow run, its task graph and logs;
- ``prefect-trial-table.png``: the trial table artifact;
- ``prefect-summary.png``: the job's summary artifact (chart, best trial, models);
- ``mlflow-model-version.png``: the MLflow page of the best trial's model.

Each picture must come out as a real page (not blank, not an error page's
size): the script exits 1 otherwise. Needs Chromium (Debian: ``apt-get
install chromium``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
IMAGES = ROOT / "docs" / "images"
JOB = {
    "name": "digits_search",
    "dataset": 1,
    "is_tune": True,
    "hyperparameter": {"epochs": 4},
    "hyperparameters": [
        {"name": "learning_rate", "type": "loguniform", "min": 0.0003, "max": 0.03, "base": 10},
        {"name": "hidden_units", "type": "choice", "options": [16, 32, 64]},
    ],
    "tune_config": {"metric": "validation_accuracy", "mode": "max", "num_samples": 8, "seed": 1},
}
#: smaller than this, a PNG of a 1400x1000 page is an empty or error page
MIN_BYTES = 40_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unitrain(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "unitrain.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(f"unitrain {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def screenshot(chromium: str, url: str, path: Path, height: int = 1000) -> None:
    """Save ``url`` as ``path``, a PNG 1400 pixels wide."""
    profile = tempfile.mkdtemp(prefix="chromium-")
    subprocess.run(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size=1400,{height}",
            "--virtual-time-budget=20000",
            f"--screenshot={path}",
            url,
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    shutil.rmtree(profile, ignore_errors=True)
    size = path.stat().st_size if path.exists() else 0
    if size < MIN_BYTES:
        raise SystemExit(f"{path.name} ({url}) came out as {size} bytes: not a real page")
    print(f"{path}: {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the pictures")
    args = parser.parse_args()
    images = args.out
    if not shutil.which(args.chromium):
        raise SystemExit(f"{args.chromium} not found; install Chromium (apt-get install chromium)")
    home = Path(tempfile.mkdtemp(prefix="unitrain-screenshots-")) / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(UNITRAIN_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect_port, mlflow_port = free_port(), free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "unitrain.cli", "serve"]
        + ["--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    prefect_ui, mlflow_ui = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    try:
        assert serve.stdout is not None
        for line in serve.stdout:
            if "Ctrl-C stops everything" in line:
                break
        else:
            raise SystemExit("unitrain serve stopped while starting")
        job_file = home.parent / "job.json"
        job_file.write_text(json.dumps(JOB))
        result = json.loads(unitrain(env, "run", str(job_file)))
        shown = json.loads(unitrain(env, "jobs", "show", JOB["name"], "--json"))
        flow_run = shown["prefect_flow_runs"][-1]
        body = {"artifacts": {"flow_run_id": {"any_": [flow_run]}}, "sort": "CREATED_DESC"}
        artifacts = httpx.post(f"{prefect_ui}/api/artifacts/filter", json=body, timeout=30).json()
        table = next(a for a in artifacts if a["type"] == "table")
        summary = next(a for a in artifacts if a["type"] == "markdown")
        time.sleep(2)  # the UI's first page load compiles nothing, but let the server settle
        images.mkdir(parents=True, exist_ok=True)
        screenshot(
            args.chromium, f"{prefect_ui}/runs/flow-run/{flow_run}", images / "prefect-flow-run.png"
        )
        screenshot(
            args.chromium,
            f"{prefect_ui}/artifacts/artifact/{table['id']}",
            images / "prefect-trial-table.png",
        )
        screenshot(
            args.chromium,
            f"{prefect_ui}/artifacts/artifact/{summary['id']}",
            images / "prefect-summary.png",
            height=1400,
        )
        screenshot(
            args.chromium,
            f"{mlflow_ui}/#/models/unitrain/versions/{result['model_id']}",
            images / "mlflow-model-version.png",
        )
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=60)
        unitrain(env, "stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
