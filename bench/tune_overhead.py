"""What unitrain costs over raw Ray Tune, as ratios measured in one run on this machine.

Every figure compares unitrain with a plain Python script that runs the same
trials with raw Ray Tune tuned for the machine (``bench/raw_tune.py``: actor
reuse, two trials at a time), both doing the synthetic objective's sleep:

1. fixed cost: a one-trial job that does no work, process start to exit, on a
   fresh home with nothing running (cold) and with the local stack up (warm);
2. per trial: 40 trials x 1 s and 200 trials x 0.1 s, with the fixed cost
   (``unitrain run`` against the script, both timed from process start to
   exit) and without it (the same searches in one process, on one cluster);
3. flat: 10,000 trials x 0.01 s through ``unitrain run`` (``--quick``: 1,000):
   the whole job, the cost per trial of the last tenth of the trials against
   the first tenth, the driver's peak memory;
4. checkpoints: trials that save a 50 MB model at every report, each report
   carrying it as its checkpoint, against raw Ray Tune reporting
   ``Checkpoint.from_directory`` of the same files (in this process);
5. the served stack: the same 10,000 trials (``--quick``: 200) with MLflow
   behind a tracking server over HTTP (``mlflow server`` with proxied
   artifacts, on loopback), against the script logging and registering each
   trial with MLflow's client against a server of its own, started the same way;
6. start-up: ``unitrain validate`` of a tuning job, and a training job that
   does no work with the local stack up, against a ``python -c "import ..."``
   of exactly the modules each one imported (read from ``-X importtime``):
   what a command costs beyond the imports it cannot avoid.

The per-trial figures take the better of two runs of each side, run in turns,
and so do the fixed costs of the script and of a job with the stack up (a
fresh home is fresh only once). With trials shorter than a worker's start, raw
Ray Tune often hands a free actor to a trial whose own actor is starting and
stops that one, so one run of the same search can take twice as long as
another; unitrain's jobs do not (``unitrain._compat.install_search_patches``),
the script does, as raw Ray Tune would for a user. In this process (figures 2b)
the change, installed by the first job, applies to both sides.

Each figure is printed next to its target; the exit code is 1 if one is missed.
Usage: python bench/tune_overhead.py [--quick]   (--quick: small CI-sized runs)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
CONCURRENCY = 2
#: runs of each side of a per-trial figure (the better one counts)
ROUNDS = 2


@dataclass
class Figure:
    name: str
    value: float
    target: float
    unit: str = "x"
    #: the target is a floor, not a ceiling
    at_least: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    def line(self) -> str:
        shown = f"{self.value:.2f}{self.unit}"
        target = f"{'>=' if self.at_least else '<='} {self.target:g}{self.unit}"
        return f"{self.name:<58}{shown:>10}  {target:<10}  {'ok' if self.met else 'MISSED'}"


def environment(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "RAY_", "UNITRAIN_"))
    }
    env.update(
        UNITRAIN_HOME=str(home),
        # Empty at first, as on a machine where unitrain was just installed (with
        # the Prefect database `make setup` migrates, and nothing else).
        UNITRAIN_CACHE=str(home.parent / "cache"),
        UNITRAIN_IDLE_S="600",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        # Both sides: no internet here (and unitrain turns it off for its own jobs).
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    return env


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from process start to exit, and the process's peak memory in MB."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{errors.decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def tuning_job(name: str, trials: int, work_s: float) -> dict:
    return {
        "name": name,
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameter": {"work_s": work_s},
        "hyperparameters": [
            {"name": "x", "type": "uniform", "min": 0, "max": 1},
            {"name": "y", "type": "uniform", "min": 0, "max": 1},
        ],
        "tune_config": {
            "metric": "score",
            "mode": "max",
            "num_samples": trials,
            "max_concurrent_trials": CONCURRENCY,
        },
    }


def unitrain_run(home: Path, job: dict) -> tuple[float, float]:
    path = home.parent / f"{job['name']}.json"
    path.write_text(json.dumps(job))
    command = [sys.executable, "-m", "unitrain.cli", "run", str(path)]
    return run_timed(command, environment(home))


def raw_storage(home: Path) -> Path:
    """Where raw Ray Tune keeps its results and checkpoints: in the bench's own folder,
    which is removed at the end, as unitrain's is (both keep gigabytes at full size)."""
    return home.parent / "raw-tune"


def raw_script(home: Path, trials: int, work_s: float, ends: Path | None = None) -> float:
    command = [sys.executable, str(ROOT / "bench" / "raw_tune.py"), str(trials), str(work_s)]
    command += ["--storage", str(raw_storage(home))]
    if ends is not None:
        command += ["--ends", str(ends)]
    return run_timed(command, environment(home))[0]


class TrackingServer:
    """An ``mlflow server`` on loopback with its own store and proxied artifacts, as a team
    runs one (clients upload their files through it)."""

    def __init__(self, folder: Path) -> None:
        import socket

        folder.mkdir(parents=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", (folder / "artifacts").as_uri(),
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        log = (folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not self.healthy():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"mlflow server did not start: see {folder / 'server.log'}")
            time.sleep(0.25)

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        import signal

        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def served_stack(base: Path, trials: int) -> Figure:
    """``trials`` x 0.01 s against a tracking server, each side with a server of its own."""
    home = base / "served" / "home"
    home.parent.mkdir()
    (home.parent / "cache").symlink_to(base / "cache")
    server = TrackingServer(base / "served" / "raw-server")
    try:
        command = [sys.executable, str(ROOT / "bench" / "raw_tune.py"), str(trials), "0.01"]
        command += ["--storage", str(raw_storage(home)), "--mlflow", server.url]
        raw = run_timed(command, environment(home))[0]
    finally:
        server.stop()
    server = TrackingServer(base / "served" / "unitrain-server")
    job = tuning_job(f"bench-served-{trials}", trials, 0.01)
    path = home.parent / f"{job['name']}.json"
    path.write_text(json.dumps(job))
    env = environment(home) | {"MLFLOW_TRACKING_URI": server.url}
    try:
        ours = run_timed([sys.executable, "-m", "unitrain.cli", "run", str(path)], env)[0]
        subprocess.run(
            [sys.executable, "-m", "unitrain.cli", "stop"], env=env, capture_output=True,
            check=False,
        )  # fmt: skip
    finally:
        server.stop()
    return Figure(
        f"{trials} trials x 0.01 s, MLflow server ({ours:.1f} s / {raw:.1f} s)", ours / raw, 1.3
    )


def training_job(name: str) -> dict:
    """A training job that does no work."""
    return {"name": name, "dataset": 1, "plugin": "synthetic", "hyperparameter": {}}


def imported_modules(command: list[str], env: dict[str, str], log: Path | None = None) -> list[str]:
    """Every module ``command`` (a ``python -m`` command) imported, in the order of
    ``-X importtime``'s report (a module's own imports come before it).

    Every one, not only the report's outermost: a job imports in several threads,
    and the report's nesting is one count for the whole process, so a module that
    one thread imports while another is inside an import looks nested. Importing a
    module that is in already costs nothing. A job sends its process's stderr to its
    ``run.log`` while it runs: ``log`` is read for the rest of the report.
    """
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = done.stderr.splitlines()
    if log is not None:
        report += log.read_text(errors="replace").splitlines()
    modules = []
    for line in report:
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1]
            if name.strip() and name.strip() != "imported package":
                modules.append(name.strip())
    return list(dict.fromkeys(modules))


def imports_alone(modules: list[str], env: dict[str, str]) -> float:
    """Seconds a fresh interpreter takes to import ``modules`` and exit.

    A job imports in several threads, so the report's order is not always one a
    single thread can follow: a module that fails is tried again once the others
    are in (one that still fails is left out, and named).
    """
    code = f"""
import importlib, os, sys
later = []
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception:
        later.append(name)
for name in later:
    try:
        importlib.import_module(name)
    except Exception as error:
        print(f"left out {{name}}: {{error!r}}", file=sys.stderr)
os._exit(0)
"""
    return run_timed([sys.executable, "-c", code], env)[0]


def start_up(home: Path) -> list[Figure]:
    """What ``validate`` and a job cost beyond their imports: each against the imports
    alone, the better of two runs of each, in turns."""
    env = environment(home)

    def command(verb: str, job: dict) -> list[str]:
        path = home.parent / f"{job['name']}.json"
        path.write_text(json.dumps(job))
        return [sys.executable, "-m", "unitrain.cli", verb, str(path)]

    def validate(turn: int) -> list[str]:
        return command("validate", tuning_job("bench-validate", 25, 0.0))

    def noop(turn: int) -> list[str]:  # a job of a name runs once: a new one each time
        return command("run", training_job(f"bench-noop-{turn}"))

    figures = []
    for what, make, target in (
        ("unitrain validate, a tuning job", validate, 1.2),
        ("training job doing nothing, stack up", noop, 1.5),
    ):
        first = make(ROUNDS)  # also brings the stack up for the job
        log = home / "runs" / f"bench-noop-{ROUNDS}" / "run.log" if make is noop else None
        modules = imported_modules(first, env, log)
        ours, alone = [], []
        for turn in range(ROUNDS):
            alone.append(imports_alone(modules, env))
            ours.append(run_timed(make(turn), env)[0])
        figures.append(
            Figure(
                f"{what} ({min(ours):.1f} s / imports {min(alone):.1f} s)",
                min(ours) / min(alone),
                target,
            )
        )
    return figures


def per_trial_cost(home: Path, job: str, count: int) -> tuple[float, float]:
    """Seconds per trial over the first and the last ``count`` trials to finish."""
    finished = [p.stat().st_mtime for p in (home / "runs" / job / "trials").glob("*/trial.json")]
    return window_costs(finished, count)


def window_costs(ends: list[float], count: int) -> tuple[float, float]:
    """Seconds per trial over the first and the last ``count`` of these end times."""
    finished = sorted(ends)
    first = (finished[count] - finished[0]) / count
    last = (finished[-1] - finished[-count - 1]) / count
    return first, last


def steady_state(home: Path, workloads: list[tuple[int, float]]) -> list[Figure]:
    """The same searches in this process, on the local stack's Ray: no process starts."""
    os.environ.update(environment(home))
    from unitrain.settings import configure_environment

    configure_environment()
    import ray
    from ray import tune

    from unitrain.runtime import local_stack
    from unitrain.runtime.prefect_server import prefect_api

    figures = []
    with local_stack.lease() as stack, prefect_api():
        ray.init(address=stack.ray_address, namespace="unitrain", log_to_driver=False)
        from unitrain.flows.train import train

        train(**tuning_job("bench-warm-up", 2, 0.0))  # imports, first round trips
        for trials, work_s in workloads:

            def trainable(config: dict, work_s: float = work_s) -> None:
                time.sleep(work_s)
                tune.report({"score": 1.0 - (config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2})

            raws, ourses = [], []
            for round_ in range(ROUNDS):
                started = time.perf_counter()
                tune.Tuner(
                    trainable,
                    param_space={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)},
                    tune_config=tune.TuneConfig(
                        metric="score",
                        mode="max",
                        num_samples=trials,
                        max_concurrent_trials=CONCURRENCY,
                        reuse_actors=True,
                        trial_dirname_creator=lambda trial: trial.trial_id,
                    ),
                    run_config=tune.RunConfig(storage_path=str(raw_storage(home)), verbose=0),
                ).fit()
                raws.append(time.perf_counter() - started)
                started = time.perf_counter()
                name = f"bench-steady-{trials}x{work_s}-{round_}"
                result = train(**tuning_job(name, trials, work_s))
                ourses.append(time.perf_counter() - started)
            raw, ours = min(raws), min(ourses)
            assert len(result["trial_models"]) == trials, "every trial must be registered"
            figures.append(
                Figure(
                    f"per trial, {trials} x {work_s} s, no fixed cost ({ours:.1f} s / {raw:.1f} s)",
                    ours / raw,
                    1.2,
                )
            )
        figures.append(checkpointing(train, raw_storage(home)))
        ray.shutdown()
    return figures


#: trials, reports per trial and megabytes of the checkpoint figure
CHECKPOINTS = (4, 5, 50)


def checkpointing(train: object, storage: Path) -> Figure:
    """A trial that checkpoints a 50 MB model at every report: unitrain's plugin saves it into
    ``run.checkpoint_output`` and reports; raw Ray Tune writes it into a folder and reports
    ``Checkpoint.from_directory`` of it. Both in this process, the better of two runs."""
    from ray import tune

    trials, reports, megabytes = CHECKPOINTS

    def trainable(config: dict) -> None:
        # Ray Tune's own pattern: report copies the folder into the storage before it returns.
        # The same work as the plugin's: a step of 0.05 s before each report, the model saved
        # before each, and the final model kept (here: carried by the last report).
        with tempfile.TemporaryDirectory(prefix="raw-checkpoint-") as name:
            folder = Path(name)
            for step in range(reports + 1):
                time.sleep(0.05)
                (folder / "model.json").write_text(json.dumps({"x": config["x"], "step": step}))
                (folder / "weights.bin").write_bytes(bytes(megabytes * 2**20))
                last = step == reports
                score = 1.0 - (config["x"] - 0.3) ** 2 if last else step / reports
                tune.report({"score": score}, checkpoint=tune.Checkpoint.from_directory(folder))

    raws, ourses = [], []
    for round_ in range(ROUNDS):
        started = time.perf_counter()
        tune.Tuner(
            trainable,
            param_space={"x": tune.uniform(0, 1)},
            tune_config=tune.TuneConfig(
                metric="score",
                mode="max",
                num_samples=trials,
                max_concurrent_trials=CONCURRENCY,
                reuse_actors=True,
                trial_dirname_creator=lambda trial: trial.trial_id,
            ),
            run_config=tune.RunConfig(storage_path=str(storage), verbose=0),
        ).fit()
        raws.append(time.perf_counter() - started)
        job = tuning_job(f"bench-checkpoints-{round_}", trials, 0.05 * (reports + 1))
        job["hyperparameter"].update(steps=reports + 1, checkpoint_mb=megabytes)
        started = time.perf_counter()
        train(**job)  # type: ignore[operator]
        ourses.append(time.perf_counter() - started)
    raw, ours = min(raws), min(ourses)
    return Figure(
        f"{trials} trials checkpointing {megabytes} MB x {reports} ({ours:.1f} s / {raw:.1f} s)",
        ours / raw,
        1.2,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's homes and stores")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="unitrain-bench-"))
    try:
        return measure(base, quick=args.quick)
    finally:  # the stacks it started, and its gigabytes of stores, go with it
        for home in (base / "home", base / "second" / "home", base / "served" / "home"):
            if home.exists():
                stop = [sys.executable, "-m", "unitrain.cli", "stop"]
                subprocess.run(stop, env=environment(home), capture_output=True, check=False)
        if args.keep:
            print(f"kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def measure(base: Path, *, quick: bool) -> int:
    """Every figure, printed as it is measured; 1 when a target is missed."""
    workloads = [(8, 0.5), (40, 0.05)] if quick else [(40, 1.0), (200, 0.1)]
    flat_trials = 1000 if quick else 10_000
    home = base / "home"
    figures: list[Figure] = []

    def show(figure: Figure) -> None:
        figures.append(figure)
        print(figure.line(), flush=True)

    # 1. fixed cost (the script runs with nothing else running, as before any job)
    raw = min(raw_script(home, 1, 0.0) for _ in range(ROUNDS))
    cold, _ = unitrain_run(home, tuning_job("bench-cold", 1, 0.0))
    warm = min(
        unitrain_run(home, tuning_job(f"bench-warm-{turn}", 1, 0.0))[0] for turn in range(ROUNDS)
    )
    show(Figure(f"fixed cost, fresh home ({cold:.1f} s / {raw:.1f} s)", cold / raw, 2.5))
    show(Figure(f"fixed cost, local stack up ({warm:.1f} s / {raw:.1f} s)", warm / raw, 1.0))
    # A second new home on the same machine starts from what the first one kept.
    second = base / "second" / "home"
    second.parent.mkdir()
    (second.parent / "cache").symlink_to(home.parent / "cache")
    again, _ = unitrain_run(second, tuning_job("bench-second-home", 1, 0.0))
    stop = [sys.executable, "-m", "unitrain.cli", "stop"]
    subprocess.run(stop, env=environment(second), capture_output=True, check=False)
    show(Figure(f"fixed cost, another fresh home ({again:.1f} s / {raw:.1f} s)", again / raw, 2.5))

    # 6. start-up against the imports (the stack is up from here on)
    for figure in start_up(home):
        show(figure)

    # 2. per trial, with the fixed cost
    for trials, work_s in workloads:
        raws, ourses = [], []
        for round_ in range(ROUNDS):
            raws.append(raw_script(home, trials, work_s))
            name = f"bench-{trials}x{work_s}-{round_}"
            ourses.append(unitrain_run(home, tuning_job(name, trials, work_s))[0])
        raw, ours = min(raws), min(ourses)
        show(
            Figure(
                f"per trial, {trials} x {work_s} s, with fixed cost ({ours:.1f} s / {raw:.1f} s)",
                ours / raw,
                1.2,
            )
        )

    # 3. flat at scale
    raw_ends = base / "raw-ends.txt"
    raw = raw_script(home, flat_trials, 0.01, ends=raw_ends)
    job = f"bench-flat-{flat_trials}"
    ours, peak_mb = unitrain_run(home, tuning_job(job, flat_trials, 0.01))
    show(
        Figure(
            f"{flat_trials} trials x 0.01 s, whole job ({ours:.1f} s / {raw:.1f} s)",
            ours / raw,
            1.3,
        )
    )
    window = flat_trials // 10
    first, last = per_trial_cost(home, job, window)
    show(
        Figure(
            f"cost per trial, last {window} / first {window} "
            f"({last * 1000:.0f} ms / {first * 1000:.0f} ms)",
            last / first,
            1.2,
        )
    )
    raw_first, raw_last = window_costs([float(t) for t in raw_ends.read_text().split()], window)
    print(
        f"  (raw Ray Tune's own, the same windows: {raw_last * 1000:.0f} ms / "
        f"{raw_first * 1000:.0f} ms = {raw_last / raw_first:.2f}x)",
        flush=True,
    )
    show(Figure("driver's peak memory", peak_mb / 1024, 2.0, " GB"))

    # 5. the same against an MLflow tracking server
    show(served_stack(base, 200 if quick else flat_trials))

    # 2b. per trial without the fixed cost (this process joins the local stack)
    for figure in steady_state(home, workloads):
        show(figure)

    subprocess.run(
        [sys.executable, "-m", "unitrain.cli", "stop"],
        env=environment(home),
        check=False,
        capture_output=True,
    )
    cores = os.cpu_count()
    print(
        f"\nmachine: {cores} cores, {os.uname().machine}; "
        f"bench process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )
    missed = [f.name for f in figures if not f.met]
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
