"""Plots of a finished search: which are made, and what the importance says."""

from __future__ import annotations

import dataclasses
import io
import json
import random

import pytest
from PIL import Image

from unitrain.planning import plan_job
from unitrain.tune.results import TrialOutcome
from unitrain.ui.plots import importance, search_plots


@pytest.fixture
def plan(home):
    return plan_job(
        {
            "name": "search",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": [
                {"name": "x", "type": "uniform", "min": 0, "max": 1},
                {"name": "y", "type": "uniform", "min": 0, "max": 1},
                {"name": "label", "type": "choice", "options": ["a", "b"]},
            ],
            "tune_config": {"metric": "score", "mode": "max", "num_samples": 20},
        },
        "synthetic",
    )


def trials(count: int, root, steps: int = 1) -> list[TrialOutcome]:
    """Trials whose score depends on x only; their metric histories in ``root``."""
    made = []
    rng = random.Random(0)
    for i in range(count):
        config = {"x": rng.random(), "y": rng.random(), "label": rng.choice("ab")}
        score = 1 - (config["x"] - 0.3) ** 2
        record = root / f"t{i}" / "record"
        record.mkdir(parents=True)
        lines = [["score", score * (s + 1) / steps, 0, s] for s in range(steps)]
        (record / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        made.append(
            TrialOutcome(
                trial_id=f"t{i}",
                status="TERMINATED",
                config=config,
                metrics={"score": score},
                trial_logdir="",
                model_dir="",
                mlflow_run_id="",
                ended="KILLED" if i % 3 == 0 else "FINISHED",
            )
        )
    return made


def test_a_search_gets_parallel_coordinates_importance_and_learning_curves(plan, tmp_path):
    plots = search_plots(plan, trials(12, tmp_path, steps=4), tmp_path)
    assert set(plots) == {
        "parallel_coordinates.png",
        "parameter_importance.png",
        "learning_curves.png",
    }
    for png in plots.values():
        width, height = Image.open(io.BytesIO(png)).size
        assert width > 300 and height > 100


def test_one_value_per_trial_draws_no_curves_and_few_trials_no_importance(plan, tmp_path):
    assert set(search_plots(plan, trials(4, tmp_path), tmp_path)) == {"parallel_coordinates.png"}


def test_fewer_than_two_scored_trials_have_nothing_to_explain(plan, tmp_path):
    [one] = trials(1, tmp_path)
    assert search_plots(plan, [one], tmp_path) == {}


def test_importance_finds_the_hyperparameter_the_metric_depends_on(plan, tmp_path):
    shares = importance(plan, trials(30, tmp_path))
    assert set(shares) == {"x", "y", "label"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["x"] > 0.6 and shares["x"] == max(shares.values())


def test_a_choice_that_matters_outweighs_a_number_that_does_not(plan, tmp_path):
    made = trials(40, tmp_path)
    for trial in made:  # the score now depends on the choice only
        trial.metrics["score"] = 1.0 if trial.config["label"] == "a" else 0.0
    shares = importance(plan, made)
    assert shares["label"] > 0.8
    assert shares["x"] < 0.15 and shares["y"] < 0.15  # chance, less the noise correction


@pytest.mark.parametrize("count", [2, 3])
def test_several_objectives_get_a_pareto_front_plot(home, tmp_path, count):
    from unitrain.tune.ranking import rank

    metrics = ["f1", "f2", "f3"][:count]
    several = plan_job(
        {
            "name": "several",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {
                "metric": metrics,
                "mode": ["min"] * count,
                "num_samples": 20,
                "constraints": [{"metric": "f1", "max": 0.9}],
            },
        },
        "synthetic",
    )
    made = []
    for trial in trials(12, tmp_path):
        x = trial.config["x"]
        trial.metrics.update(f1=x, f2=(1 - x) ** 2, f3=abs(x - 0.5))
        made.append(dataclasses.replace(trial, model_dir=str(tmp_path)))  # a model: it competes
    ranking = rank(made, several.config)
    assert ranking.infeasible  # x > 0.9 broke the constraint
    plots = search_plots(several, made, tmp_path, ranking)
    assert "pareto_front.png" in plots
    width, height = Image.open(io.BytesIO(plots["pareto_front.png"])).size
    assert width > (1000 if count == 3 else 300) and height > 200  # three pairs side by side
