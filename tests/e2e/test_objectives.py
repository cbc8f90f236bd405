"""Several objectives, constraints and conditional hyperparameters, for real: Ray Tune on the
flow's Ray, the models in MLflow's registry, the trial table and plots in Prefect."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from tests.e2e.test_train_flow import flow_artifacts, run
from tests.stores import mlflow_client
from unitrain.job.objective import Objective
from unitrain.job.pareto import dominates, pareto_front
from unitrain.stores.registry import ModelRegistry

pytestmark = pytest.mark.e2e

XY = [
    {"name": "x", "type": "uniform", "min": 0, "max": 1},
    {"name": "y", "type": "uniform", "min": 0, "max": 1},
]
BOTH_MIN = (Objective("f1", "min"), Objective("f2", "min"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def version_tags(model_id: int) -> dict[str, str]:
    return dict(mlflow_client().get_model_version("unitrain", str(model_id)).tags)


def final_table(flow_run_id) -> list[dict]:
    tables = [a for a in flow_artifacts(flow_run_id) if a.type == "table"]
    return json.loads(max(tables, key=lambda a: a.created).data)


def test_two_objectives_register_a_front_no_trial_dominates(flow_env, tmp_path):
    name = unique("e2e-front")
    state = run(
        name=name,
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"objective": "zdt1"},
        hyperparameters=XY,
        tune_config={
            "metric": ["f1", "f2"],
            "mode": ["min", "min"],
            "num_samples": 12,
            "max_concurrent_trials": 2,
            "seed": 4,
            "search_alg": {"name": "optunasearch"},
        },
    )
    assert state.is_completed(), state
    result = state.result()
    trials = result["trial_models"]
    assert len(trials) == 12
    points = {t["trial_id"]: (t["metrics"]["f1"], t["metrics"]["f2"]) for t in trials}
    front = {m["trial_id"] for m in result["pareto_front"]}
    # the front is exactly the trials no other trial dominates
    assert front == {
        list(points)[i] for i in pareto_front(list(points.values()), BOTH_MIN)
    }  # fmt: skip
    for member in front:
        assert not any(dominates(p, points[member], BOTH_MIN) for p in points.values())
    for other in set(points) - front:
        assert any(dominates(points[m], points[other], BOTH_MIN) for m in front)
    # the one model: the front's best on the first metric
    model_of = {t["trial_id"]: t["model_id"] for t in trials}
    chosen = min(front, key=lambda t: points[t][0])
    assert result["model_id"] == model_of[chosen]
    assert {m["model_id"] for m in result["pareto_front"]} == {model_of[t] for t in front}
    for trial_id, model_id in model_of.items():
        tags = version_tags(model_id)
        assert (tags.get("unitrain.pareto") == "true") == (trial_id in front), trial_id
    alias = mlflow_client().get_model_version_by_alias("unitrain", f"best-{name}")
    assert int(alias.version) == model_of[chosen]
    # the trial table marks the front; the Pareto plot is in MLflow and in Prefect
    rows = final_table(state.state_details.flow_run_id)
    assert {r["trial_id"] for r in rows if r.get("pareto") == "yes"} == front
    parent = ModelRegistry().get(result["model_id"]).run_id
    job_run = mlflow_client().get_run(parent).data.tags["mlflow.parentRunId"]
    png = mlflow_client().download_artifacts(job_run, "plots/pareto_front.png", str(tmp_path))
    assert open(png, "rb").read().startswith(b"\x89PNG")
    images = [a for a in flow_artifacts(state.state_details.flow_run_id) if a.type == "image"]
    assert any("pareto" in (a.key or "") for a in images)


def test_a_constraint_that_rules_out_the_optimum_is_kept(flow_env):
    # The bowl's optimum (x=0.3, y=0.7, score 1.0) is evaluated first, and its cost
    # (x + y = 1.0) breaks cost <= 0.8.
    state = run(
        name=unique("e2e-constraint"),
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameters=XY,
        tune_config={
            "metric": "score",
            "mode": "max",
            "num_samples": 10,
            "max_concurrent_trials": 2,
            "seed": 2,
            "constraints": [{"metric": "cost", "max": 0.8}],
            "search_alg": {
                "name": "optunasearch",
                "points_to_evaluate": [{"x": 0.3, "y": 0.7}, {"x": 0.1, "y": 0.7}],
            },
        },
    )
    assert state.is_completed(), state
    result = state.result()
    trials = result["trial_models"]
    optimum = next(t for t in trials if t["config"]["x"] == 0.3)
    assert optimum["metrics"]["score"] == pytest.approx(1.0)
    feasible = [t for t in trials if t["metrics"]["cost"] <= 0.8]
    best = max(feasible, key=lambda t: t["metrics"]["score"])
    assert result["model_id"] == best["model_id"] != optimum["model_id"]
    assert result["best_trial"]["metrics"]["cost"] <= 0.8
    assert ModelRegistry().get(optimum["model_id"]).best is False
    rows = final_table(state.state_details.flow_run_id)
    infeasible = {t["trial_id"] for t in trials if t["metrics"]["cost"] > 0.8}
    assert {r["trial_id"] for r in rows if r.get("feasible") == "no"} == infeasible
    assert optimum["trial_id"] in infeasible


def test_moasha_stops_trials_that_are_dominated_at_their_rung(flow_env):
    factor = 3
    state = run(
        name=unique("e2e-moasha"),
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"objective": "zdt1", "steps": 9},
        hyperparameters=XY,
        tune_config={
            "metric": ["f1", "f2"],
            "mode": ["min", "min"],
            "num_samples": 12,
            # one at a time: each trial reaches each rung after the trials before it
            "max_concurrent_trials": 1,
            "seed": 6,
            "scheduler": {
                "name": "moasha",
                "options": {"max_t": 9, "grace_period": 1, "reduction_factor": factor},
            },
        },
    )
    assert state.is_completed(), state
    result = state.result()
    trials = result["trial_models"]
    registry = ModelRegistry()
    runs = {t["trial_id"]: registry.get(t["model_id"]).run_id for t in trials}
    order = sorted(runs, key=lambda t: mlflow_client().get_run(runs[t]).info.start_time)

    def at(trial_id: str, iteration: int) -> tuple[float, float] | None:
        """The trial's reported (f1, f2) at a training iteration (its report number)."""
        values = []
        for metric in ("f1", "f2"):
            history = mlflow_client().get_metric_history(runs[trial_id], metric)
            steps = {m.step: m.value for m in history}
            if iteration - 1 not in steps:
                return None
            values.append(steps[iteration - 1])
        return tuple(values)  # type: ignore[return-value]

    stopped = {}
    for t in trials:
        tags = version_tags(t["model_id"])
        if "unitrain.stopped_at_iteration" in tags:
            iteration = int(tags["unitrain.stopped_at_iteration"])
            if iteration < 9:  # (at max_t every trial ends)
                stopped[t["trial_id"]] = iteration
    assert stopped, "MOASHA stopped no trial"
    dominated = 0
    for trial_id, rung in stopped.items():
        assert rung in (1, 3), (trial_id, rung)  # the rungs: 1, 3 and 9
        before = order[: order.index(trial_id)]
        held = [v for t in before if (v := at(t, rung)) is not None]
        mine = at(trial_id, rung)
        assert mine is not None
        if any(dominates(other, mine, BOTH_MIN) for other in held):
            dominated += 1
            continue
        # a front member stops only when the rung's front alone overfills its room
        recorded = [*held, mine]
        room = math.ceil(len(recorded) / factor)
        assert len(pareto_front(recorded, BOTH_MIN)) > room, (trial_id, rung, recorded)
    assert dominated >= 1
    # and it stopped no trial that is on the final front at its own end
    front = {m["trial_id"] for m in result["pareto_front"]}
    assert len(front) >= 1


@pytest.mark.parametrize("algorithm", ["hyperoptsearch", "optunasearch", "basicvariantgenerator"])
def test_a_conditional_entry_is_there_only_when_its_condition_held(flow_env, algorithm):
    space = [
        {"name": "label", "type": "choice", "options": ["a", "b", "c"]},
        {"name": "x", "type": "uniform", "min": 0, "max": 1, "when": {"label": ["a", "b"]}},
        {"name": "y", "type": "uniform", "min": 0, "max": 1},
    ]
    state = run(
        name=unique(f"e2e-when-{algorithm[:5]}"),
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameters=space,
        tune_config={
            "metric": "score",
            "mode": "max",
            "num_samples": 10,
            "max_concurrent_trials": 2,
            "seed": 8,
            "search_alg": {"name": algorithm},
        },
    )
    assert state.is_completed(), state
    trials = state.result()["trial_models"]
    labels = {t["config"]["label"] for t in trials}
    assert "c" in labels and labels & {"a", "b"}, labels
    registry = ModelRegistry()
    rows = {r["trial_id"]: r for r in final_table(state.state_details.flow_run_id)}
    for t in trials:
        held = t["config"]["label"] in ("a", "b")
        record = registry.get(t["model_id"])
        params = mlflow_client().get_run(record.run_id).data.params
        assert ("x" in t["config"]) == held, t
        assert ("x" in record.hyperparameters) == held, record.hyperparameters
        assert ("x" in params) == held, params
        assert (rows[t["trial_id"]].get("x") not in (None, "")) == held, rows[t["trial_id"]]
        # the plugin scored what it was given: x only where it held (else its default, 0)
        x = t["config"].get("x", 0.0)
        expected = 1 - (x - 0.3) ** 2 - (t["config"]["y"] - 0.7) ** 2
        assert t["metrics"]["score"] == pytest.approx(expected)
