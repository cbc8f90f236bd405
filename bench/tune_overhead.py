"""Per-trial overhead of a unitrain tuning job against raw Ray Tune, in one process tree.

Runs the same trials three ways on one local Ray (2 at a time) and prints
ratios, not absolute times:

1. raw Ray Tune with its defaults,
2. raw Ray Tune tuned for this machine (actor reuse),
3. a full unitrain tuning job (Prefect flow, MLflow runs, every model registered),
   with the bundled ``synthetic`` plugin doing the same sleep.

Usage: python bench/tune_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="unitrain-bench-"))
os.environ["UNITRAIN_HOME"] = str(HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from unitrain.settings import configure_environment  # noqa: E402

configure_environment()

CONCURRENCY = 2


def raw_ray_tune(trials: int, work_s: float, *, tuned: bool) -> float:
    from ray import tune

    def trainable(config: dict) -> None:
        time.sleep(work_s)
        tune.report({"score": 1.0 - (config["x"] - 0.3) ** 2 - (config["y"] - 0.7) ** 2})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            num_samples=trials,
            max_concurrent_trials=CONCURRENCY,
            **({"reuse_actors": True} if tuned else {}),
        ),
        run_config=tune.RunConfig(storage_path=str(HOME / "raw"), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def unitrain_job(trials: int, work_s: float, name: str) -> float:
    from unitrain.flows.train import train

    start = time.perf_counter()
    result = train(
        name=name,
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"work_s": work_s},
        hyperparameters=[
            {"name": "x", "type": "uniform", "min": 0, "max": 1},
            {"name": "y", "type": "uniform", "min": 0, "max": 1},
        ],
        tune_config={
            "metric": "score",
            "mode": "max",
            "num_samples": trials,
            "max_concurrent_trials": CONCURRENCY,
        },
    )
    elapsed = time.perf_counter() - start
    assert len(result["trial_models"]) == trials, "every trial must be registered"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    args = parser.parse_args()
    workloads = [(8, 0.5), (20, 0.1)] if args.quick else [(40, 1.0), (200, 0.1)]

    import ray

    from unitrain.runtime.prefect_server import prefect_api

    ray.init(num_cpus=CONCURRENCY, include_dashboard=False, namespace="unitrain")
    rows = []
    with prefect_api():
        unitrain_job(2, 0.0, "bench-warmup")  # imports and the first server round trips
        for trials, work_s in workloads:
            default = raw_ray_tune(trials, work_s, tuned=False)
            tuned = raw_ray_tune(trials, work_s, tuned=True)
            ours = unitrain_job(trials, work_s, f"bench-{trials}x{work_s}")
            ideal = trials * work_s / CONCURRENCY
            rows.append(
                {
                    "workload": f"{trials} trials x {work_s} s",
                    "ideal_s": round(ideal, 1),
                    "raw_default_s": round(default, 1),
                    "raw_tuned_s": round(tuned, 1),
                    "unitrain_s": round(ours, 1),
                    "unitrain_vs_tuned": round(ours / tuned, 2),
                    "unitrain_vs_default": round(ours / default, 2),
                    "meets_targets": ours <= 1.5 * tuned and ours < default,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    ray.shutdown()
    print()
    header = ("workload", "default", "tuned", "unitrain", "vs tuned", "vs default")
    print(
        f"{header[0]:<22}{header[1]:>9}{header[2]:>8}{header[3]:>10}{header[4]:>10}{header[5]:>12}"
    )
    for r in rows:
        print(
            f"{r['workload']:<22}{r['raw_default_s']:>9}{r['raw_tuned_s']:>8}{r['unitrain_s']:>10}"
            f"{r['unitrain_vs_tuned']:>10}{r['unitrain_vs_default']:>12}"
        )
    return 0 if all(r["meets_targets"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
