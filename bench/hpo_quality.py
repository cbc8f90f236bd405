"""How good unitrain's searches are, on objectives with a known optimum.

Every search algorithm runs through unitrain (the ``train`` flow, in this
process, on the local stack) at the same budget, one trial at a time, over
several seeds, on the ``synthetic`` plugin's two objectives: a bowl (one
optimum) and the Branin function (three). A search's regret is the best score
there is minus the best score it found. Printed, each next to its target:

1. per objective and model-based algorithm: its median regret over the seeds
   divided by random search's (target: at most 1, it beats random search);
2. with the same seed, unitrain's Optuna search proposes the same
   configurations as Optuna called directly (target: all of them).

Exit code 1 if a target is missed.
Usage: python bench/hpo_quality.py [--quick]   (--quick: fewer seeds and trials)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from tune_overhead import Figure, environment

ALGORITHMS = ["basicvariantgenerator", "hyperoptsearch", "optunasearch", "bayesoptsearch"]
OBJECTIVES = ["bowl", "branin"]


def job(name: str, algorithm: str, objective: str, seed: int, trials: int) -> dict:
    return {
        "name": name,
        "dataset": 1,
        "is_tune": True,
        "plugin": "synthetic",
        "hyperparameter": {"objective": objective},
        "hyperparameters": [
            {"name": "x", "type": "uniform", "min": 0, "max": 1},
            {"name": "y", "type": "uniform", "min": 0, "max": 1},
        ],
        "tune_config": {
            "metric": "score",
            "mode": "max",
            "num_samples": trials,
            "max_concurrent_trials": 1,  # a model-based search learns from each trial
            "seed": seed,
            "search_alg": {"name": algorithm},
        },
    }


def configurations(result: dict) -> list[tuple[float, float]]:
    """The (x, y) of each trial, in the order the search proposed them (the trials' order)."""
    return [(t["config"]["x"], t["config"]["y"]) for t in result["trial_models"]]


def optuna_directly(objective: str, seed: int, trials: int) -> list[tuple[float, float]]:
    """The same search with Optuna's own ask-and-tell, as a user of Optuna writes it."""
    import optuna

    from unitrain.plugins.synthetic import Hyperparameters
    from unitrain.plugins.synthetic import objective as score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {name: optuna.distributions.FloatDistribution(0, 1) for name in ("x", "y")}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    proposed = []
    for _ in range(trials):
        trial = study.ask(space)
        x, y = trial.params["x"], trial.params["y"]
        study.tell(trial, score(Hyperparameters(x=x, y=y, objective=objective)))
        proposed.append((x, y))
    return proposed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and trials")
    args = parser.parse_args()
    seeds = [1, 2, 3] if args.quick else [1, 2, 3, 4, 5]
    # hyperopt's first 20 trials are random: a budget of twice that lets it learn
    trials = 30 if args.quick else 40
    home = Path(tempfile.mkdtemp(prefix="unitrain-hpo-")) / "home"
    os.environ.update(environment(home))
    from unitrain.settings import configure_environment

    configure_environment()
    import ray

    from unitrain.plugins.synthetic import BEST_SCORE
    from unitrain.runtime import local_stack
    from unitrain.runtime.prefect_server import prefect_api

    figures: list[Figure] = []
    regrets: dict[tuple[str, str], list[float]] = {}
    same: list[bool] = []
    with local_stack.lease() as stack, prefect_api():
        ray.init(address=stack.ray_address, namespace="unitrain", log_to_driver=False)
        from unitrain.flows.train import train

        for objective in OBJECTIVES:
            for algorithm in ALGORITHMS:
                for seed in seeds:
                    name = f"hpo-{objective}-{algorithm}-{seed}"
                    result = train(**job(name, algorithm, objective, seed, trials))
                    found = result["best_trial"]["metrics"]["score"]
                    regrets.setdefault((objective, algorithm), []).append(
                        BEST_SCORE[objective] - found
                    )
                    if algorithm == "optunasearch":
                        ours = configurations(result)
                        theirs = optuna_directly(objective, seed, trials)
                        same.append(ours == theirs)
                median = statistics.median(regrets[(objective, algorithm)])
                print(f"{objective:<8}{algorithm:<24}median regret {median:.4f}", flush=True)
        ray.shutdown()
    local_stack.stop()

    for objective in OBJECTIVES:
        random = statistics.median(regrets[(objective, "basicvariantgenerator")])
        for algorithm in ALGORITHMS[1:]:
            median = statistics.median(regrets[(objective, algorithm)])
            figures.append(
                Figure(
                    f"{objective}, {algorithm}: median regret / random's "
                    f"({median:.3g} / {random:.3g})",
                    median / random if random > 0 else (0.0 if median == 0 else float("inf")),
                    1.0,
                )
            )
    figures.append(
        Figure(
            f"same seed, same configurations as Optuna itself ({sum(same)} of {len(same)} runs)",
            sum(same) / len(same),
            1.0,
            unit="",
            at_least=True,
        )
    )
    print()
    for figure in figures:
        print(figure.line())
    print(f"\n{len(seeds)} seeds, {trials} trials a search, one trial at a time")
    missed = [f.name for f in figures if not f.met]
    print("all targets met" if not missed else f"{len(missed)} target(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
