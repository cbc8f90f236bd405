"""The baseline: the same trials with raw Ray Tune in a plain Python script, nothing else.

Usage: python bench/raw_tune.py TRIALS WORK_S [--concurrency N]

Starts a local Ray, runs TRIALS trials of the synthetic objective (each sleeps
WORK_S) two at a time with actor reuse (Ray Tune tuned for the machine), and
exits. ``bench/tune_overhead.py`` times it from process start to exit.
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
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # No result files: the fastest Ray Tune can go (Ray warns at the end that the
    # results' files are missing; the results themselves are complete).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

    import ray
    from ray import tune

    def trainable(config: dict) -> None:
        time.sleep(args.work_s)
        tune.report({"score": 1.0 - (config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2})

    class Ends(tune.Callback):
        """When each trial ended: how the cost per trial moves over a long search."""

        def __init__(self) -> None:
            self.times: list[float] = []

        def on_trial_complete(self, iteration: int, trials: list, trial: object, **info: object):
            self.times.append(time.time())

    ends = Ends()
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
            storage_path=tempfile.mkdtemp(), verbose=0, callbacks=[ends] if args.ends else []
        ),
    )
    results = tuner.fit()
    if args.ends:
        with open(args.ends, "w") as out:
            out.writelines(f"{t}\n" for t in ends.times)
    ray.shutdown()
    return 0 if len(results) == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
