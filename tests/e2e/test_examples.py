"""Every example job of the seed document runs as shipped in examples/ (the flow, for real).

Only the dataset IDs the examples name are registered first, as users do
(``unitrain datasets add bundled:digits --id 456``). The training examples run
from the command line, as shipped, in ``test_cli_run.py``. The examples that
search over the digits for minutes run in ``make slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stores import mlflow_client
from unitrain.errors import UnitrainError
from unitrain.job.params import parse_job
from unitrain.stores.catalog import DatasetCatalog

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def seed_datasets(prefect_api, ray_cluster) -> None:
    catalog = DatasetCatalog()
    for dataset_id in (123, 456):
        if not any(e.id == dataset_id for e in catalog.entries()):
            catalog.add("bundled:digits", id=dataset_id)


def run_example(name: str, **changes):
    from unitrain.flows.train import train

    document = json.loads((EXAMPLES / name).read_text())
    document["params"].update(changes)
    job = parse_job(document)
    return train(**job.raw, plugin=job.plugin, return_state=True)


@pytest.mark.slow  # the flows' own tests cover random and grid search in `make test`
@pytest.mark.parametrize(
    ("name", "trials"),
    [
        ("tune_random.json", 10),
        ("tune_grid.json", 12),
        ("tune_asha.json", 12),
        ("tune_pbt.json", 4),
    ],
)
def test_tuning_examples(seed_datasets, name, trials):
    result = run_example(name).result()
    assert len(result["trial_models"]) == trials  # stopped by ASHA or not, each has its model
    if name == "tune_grid.json":
        points = {tuple(sorted(m["config"].items())) for m in result["trial_models"]}
        assert len(points) == 12


@pytest.mark.slow
def test_hyperopt_hyperband_example_needs_a_gpu_and_runs_without_one(seed_datasets):
    state = run_example("tune_hyperopt_hyperband.json")
    assert state.is_failed()
    with pytest.raises(UnitrainError, match="num_gpus=0.5: the Ray cluster has no GPU"):
        state.result()
    # Without a GPU, on this machine's two cores: one core per trial, a shorter search
    # (the search algorithm, scheduler and space are the example's own).
    tune_config = json.loads((EXAMPLES / "tune_hyperopt_hyperband.json").read_text())["params"][
        "tune_config"
    ]
    result = run_example(
        "tune_hyperopt_hyperband.json",
        num_gpus=0,
        num_cpus=1,
        tune_config={**tune_config, "num_samples": 12},
    ).result()
    assert len(result["trial_models"]) >= 1
    assert result["best_trial"]["metrics"]["validation_accuracy"] > 0.8


def test_a_search_that_stops_when_it_is_good_enough(seed_datasets):
    from tests.e2e.test_train_flow import flow_artifacts

    state = run_example("tune_until_good_enough.json")
    result = state.result()
    assert len(result["trial_models"]) < 200
    summary = next(
        a.data for a in flow_artifacts(state.state_details.flow_run_id) if a.type == "markdown"
    )
    if result["best_trial"]["metrics"]["score"] >= 0.95:
        assert "the search stopped: score reached the target 0.95" in summary
    else:
        assert "the search stopped: no better score in the last 10 trials" in summary


def test_a_study_in_rounds_keeps_the_best_models_and_learns_from_each_round(seed_datasets):
    from tests.e2e.test_train_flow import flow_artifacts
    from unitrain.stores.registry import ModelRegistry

    first = run_example("tune_study_rounds.json").result()
    assert len(first["trial_models"]) == 3  # keep_models: the 3 best of 8 trials
    state = run_example("tune_study_rounds.json")  # the next round of the same study
    second = state.result()
    assert len(second["trial_models"]) == 3
    assert (
        second["best_trial"]["metrics"]["score"] >= first["best_trial"]["metrics"]["score"]
    )  # the best covers both rounds
    artifacts = flow_artifacts(state.state_details.flow_run_id)
    table = max((a for a in artifacts if a.type == "table"), key=lambda a: a.created)
    assert [row["status"] for row in json.loads(table.data)].count("EARLIER") == 8
    # Each round's trials started from the best model of the rounds before it.
    registry = ModelRegistry()
    started_from = {registry.get(m["model_id"]).run_id for m in second["trial_models"]}
    checkpoints = {
        mlflow_client().get_run(r).data.tags["unitrain.checkpoint"] for r in started_from
    }
    assert checkpoints == {str(first["model_id"])}


def test_accuracy_against_size_gives_a_front_above_the_accuracy_floor(seed_datasets):
    from unitrain.job.objective import Objective
    from unitrain.job.pareto import dominates

    result = run_example("tune_accuracy_vs_size.json").result()
    trials = result["trial_models"]
    assert len(trials) == 10
    both = (Objective("validation_accuracy", "max"), Objective("parameters", "min"))

    def point(metrics):
        return (metrics["validation_accuracy"], metrics["parameters"])

    feasible = [t for t in trials if t["metrics"]["validation_accuracy"] >= 0.9]
    front = result["pareto_front"]
    assert front and all(m["metrics"]["validation_accuracy"] >= 0.9 for m in front)
    for member in front:
        assert not any(
            dominates(point(t["metrics"]), point(member["metrics"]), both) for t in feasible
        )
    # the one model: the front's most accurate (select)
    best = max(front, key=lambda m: m["metrics"]["validation_accuracy"])
    assert result["model_id"] == best["model_id"]


def test_the_conditional_example_gives_momentum_only_to_sgd_and_rmsprop(seed_datasets):
    result = run_example("tune_conditional.json").result()
    trials = result["trial_models"]
    assert len(trials) == 8
    for trial in trials:
        config = trial["config"]
        assert ("momentum" in config) == (config["optimizer"] in ("sgd", "rmsprop")), config
