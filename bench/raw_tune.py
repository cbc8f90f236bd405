"""The baseline: the same trials with raw Ray Tune in a plain Python script, nothing else.

Usage: python bench/raw_tune.py TRIALS WORK_S [--concurrency N] [--mlflow URI]

Starts a local Ray, runs TRIALS trials of the synthetic objective (each sleeps
WORK_S) two at a time with actor reuse (Ray Tune tuned for the machine), and
exits. ``bench/tune_overhead.py`` times it from process start to exit.

With ``--mlflow``, each trial also does what a hand-written script does to keep
its trials in an MLflow tracking server: in the trial, with MLflow's client, a
run with the trial's parameters and score, its model file uploaded, and a
version of a registered model made from it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("trials", type=int)
    parser.add_argument("work_s", type=float)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--ends", help="write each trial's end time (one per line) here")
    parser.add_argument("--mlflow", help="log and register each trial in this tracking server")
    parser.add_argument(
        "--storage",
        help="Ray Tune's storage folder (default: a new temporary one)",
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # No result files: the fastest Ray Tune can go (Ray warns at the end that the
    # results' files are missing; the results themselves are complete).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

    import ray
    from ray import tune

    def trainable(config: dict) -> None:
        time.sleep(args.work_s)
        score = 1.0 - (config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2
        if args.mlflow:
            keep_in_mlflow(args.mlflow, config, score)
        tune.report({"score": score})

    class Ends(tune.Callback):
        """When each trial ended: how the cost per trial moves over a long search."""

        def __init__(self) -> None:
            self.times: list[float] = []

        def on_trial_complete(self, iteration: int, trials: list, trial: object, **info: object):
            self.times.append(time.time())

    ends = Ends()
    if args.mlflow:
        from mlflow import MlflowClient

        MlflowClient(args.mlflow).create_registered_model(MODEL)
    ray.init(address="local", num_cpus=args.concurrency, include_dashboard=False)
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=args.trials,
            max_concurrent_trials=args.concurrency,
            reuse_actors=True,
            # short folder names: Ray's default puts the whole config in each one
            trial_dirname_creator=lambda trial: trial.trial_id,
        ),
        run_config=tune.RunConfig(
            storage_path=args.storage or tempfile.mkdtemp(),
            verbose=0,
            callbacks=[ends] if args.ends else [],
        ),
    )
    results = tuner.fit()
    if args.ends:
        with open(args.ends, "w") as out:
            out.writelines(f"{t}\n" for t in ends.times)
    ray.shutdown()
    return 0 if len(results) == args.trials else 1


MODEL = "raw-tune"
_CLIENT: list = []


def keep_in_mlflow(uri: str, config: dict, score: float) -> None:
    """The trial's run, its model file, and a version of the registered model."""
    import json

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    if not _CLIENT:  # one client per worker, as a script would keep it
        client = MlflowClient(uri)
        _CLIENT.append((client, client.get_experiment_by_name("Default").experiment_id))
    client, experiment = _CLIENT[0]
    run = client.create_run(experiment)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("score", score, now, 0)],
        params=[Param(k, str(v)) for k, v in config.items()],
    )
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "model.json"), "w") as out:
            json.dump({**config, "score": score}, out)
        client.log_artifacts(run_id, folder, "model")
    client.set_terminated(run_id)
    client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id)


if __name__ == "__main__":
    sys.exit(main())
