"""Tuning mode for real: Ray Tune on the flow's Ray, MLflow child runs, registry, trial table."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_train_flow import flow_artifacts, run
from tests.stores import experiment_id, mlflow_client
from unitrain.errors import UnitrainError
from unitrain.stores.registry import ModelRegistry

pytestmark = pytest.mark.e2e

XY = [
    {"name": "x", "type": "uniform", "min": 0, "max": 1},
    {"name": "y", "type": "uniform", "min": 0, "max": 1},
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def synthetic(name: str, **overrides):
    params = dict(
        name=name,
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameters=XY,
        tune_config={
            "metric": "score",
            "mode": "max",
            "num_samples": 4,
            "max_concurrent_trials": 2,
        },
    )
    params.update(overrides)
    return params


def test_seed_random_search_registers_every_trial_and_marks_the_best(flow_env, tmp_path):
    from unitrain.planning import plan_job
    from unitrain.tune.dry_run import describe

    name = unique("e2e-random")
    params = dict(
        name=name,
        dataset=1,
        checkpoint=None,
        is_tune=True,
        hyperparameter={"epochs": 2},
        hyperparameters=[
            {"name": "batch_size", "type": "choice", "options": [16, 32, 64]},
            {"name": "learning_rate", "type": "loguniform", "min": 0.0001, "max": 0.01, "base": 10},
            {"name": "optimizer", "type": "choice", "options": ["adam", "sgd"]},
        ],
        tune_config={
            "mode": "max",
            "metric": "accuracy",
            "num_samples": 4,
            "max_concurrent_trials": 2,
            "seed": 11,
        },
    )
    planned = describe(plan_job(params))
    state = run(**params)
    assert state.is_completed(), state
    result = state.result()

    assert len(result["trial_models"]) == 4
    configs = sorted((m["trial_id"], m["config"]) for m in result["trial_models"])
    assert [config for _, config in configs] == planned["sampled_configurations"][:4]
    best = max(result["trial_models"], key=lambda m: m["metrics"]["accuracy"])
    assert result["model_id"] == best["model_id"]
    assert result["best_trial"]["config"] == best["config"]

    registry = ModelRegistry()
    for model in result["trial_models"]:
        record = registry.get(model["model_id"])
        assert record.trial_id == model["trial_id"] and record.best == (model is best)
        child = mlflow_client().get_run(record.run_id)
        assert model["trial_id"] in child.info.run_name
        assert child.data.tags["unitrain.trial_id"] == model["trial_id"]
        assert child.data.params["learning_rate"] == str(model["config"]["learning_rate"])
        history = mlflow_client().get_metric_history(record.run_id, "training/loss")
        assert [m.step for m in history] == [0, 1]
    parent_id = (
        mlflow_client()
        .get_run(registry.get(result["model_id"]).run_id)
        .data.tags["mlflow.parentRunId"]
    )
    parent = mlflow_client().get_run(parent_id)
    assert parent.data.tags["unitrain.best_trial"] == best["trial_id"]
    chart = Path(mlflow_client().download_artifacts(parent_id, "tuning.png", str(tmp_path)))
    assert chart.read_bytes().startswith(b"\x89PNG")  # the objective over the trials
    alias = mlflow_client().get_model_version_by_alias(registry.name, f"best-{name}")
    assert int(alias.version) == result["model_id"]
    # The best trial's model loads with MLflow's own loader, by the job's alias.
    import mlflow.pyfunc
    import numpy as np

    best_model = mlflow.pyfunc.load_model(f"models:/unitrain@best-{name}", dst_path=str(tmp_path))
    assert "pytorch" in best_model.metadata.flavors
    assert np.asarray(best_model.predict(np.zeros((3, 64), np.float32))).shape == (3, 10)

    artifacts = flow_artifacts(state.state_details.flow_run_id)
    tables = [a for a in artifacts if a.type == "table"]
    final = max(tables, key=lambda a: a.created)
    assert best["trial_id"] in final.description
    import json

    rows = json.loads(final.data)
    assert {r["trial_id"] for r in rows} == {m["trial_id"] for m in result["trial_models"]}
    assert [r["trial_id"] for r in rows if r["best"]] == [best["trial_id"]]
    assert {r["status"] for r in rows} == {"TERMINATED"}
    bar = [a for a in artifacts if a.type == "progress" and a.description.startswith("Progress")]
    assert bar[0].data == 100
    # The Prefect UI draws the DAG: each step is linked to the steps whose results it takes.
    assert upstream_steps(state.state_details.flow_run_id) == {
        "validate_job": set(),
        "prepare_dataset": {"validate_job"},
        "tune": {"validate_job", "prepare_dataset"},
        "log_trials": {"validate_job", "tune"},
        "mark_best_trial": {"validate_job", "tune"},
        "upload_models": {"validate_job", "tune"},
    }


def upstream_steps(flow_run_id) -> dict[str, set[str]]:
    """Each task of a flow run, by name, with the names of the tasks it took results from."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    names = {run.id: run.name.rsplit("-", 1)[0] for run in task_runs}
    return {
        names[run.id]: {
            names[link.id]
            for links in run.task_inputs.values()
            for link in links
            if getattr(link, "input_type", "") == "task_run" and link.id in names
        }
        for run in task_runs
    }


def test_grid_runs_each_point_once(flow_env):
    grid = [
        {"name": "x", "type": "grid_search", "options": [0.1, 0.3, 0.5]},
        {"name": "y", "type": "grid_search", "options": [0.2, 0.7]},
        {"name": "label", "type": "grid_search", "options": ["a", "b"]},
    ]
    result = run(
        **synthetic(
            unique("e2e-grid"),
            hyperparameters=grid,
            tune_config={
                "metric": "score",
                "mode": "max",
                "num_samples": 12,
                "max_concurrent_trials": 2,
            },
        )
    ).result()
    points = sorted(
        (m["config"]["x"], m["config"]["y"], m["config"]["label"]) for m in result["trial_models"]
    )
    assert len(points) == 12 and len(set(points)) == 12
    assert result["best_trial"]["config"]["x"] == 0.3 and result["best_trial"]["config"]["y"] == 0.7


def test_gpu_request_fails_at_once_on_a_cluster_without_gpus(flow_env):
    state = run(**synthetic(unique("e2e-gpu"), num_gpus=0.5))
    assert state.is_failed()
    with pytest.raises(UnitrainError, match="num_gpus=0.5: the Ray cluster has no GPU"):
        state.result()


def test_hyperopt_with_hyperband_and_points_to_evaluate(flow_env):
    config = {
        "metric": "score",
        "mode": "max",
        "num_samples": 6,
        "max_concurrent_trials": 2,
        "search_alg": {"name": "hyperoptsearch", "points_to_evaluate": [{"x": 0.3, "y": 0.7}]},
        "scheduler": {"name": "hyperband", "options": {"max_t": 100}},
    }
    result = run(**synthetic(unique("e2e-hyperopt"), tune_config=config)).result()
    assert len(result["trial_models"]) == 6
    assert result["best_trial"]["config"]["x"] == pytest.approx(0.3)
    assert result["best_trial"]["metrics"]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("algorithm", ["bayesoptsearch", "optunasearch"])
def test_model_based_searchers_run_end_to_end(flow_env, algorithm):
    config = {
        "metric": "score",
        "mode": "max",
        "num_samples": 5,
        "max_concurrent_trials": 2,
        "seed": 3,
        "search_alg": {"name": algorithm, "points_to_evaluate": [{"x": 0.3, "y": 0.7}]},
    }
    result = run(**synthetic(unique(f"e2e-{algorithm}"), tune_config=config)).result()
    assert len(result["trial_models"]) == 5
    assert result["best_trial"]["metrics"]["score"] == pytest.approx(1.0)


def test_a_failing_trial_is_error_and_the_others_are_registered(flow_env):
    space = [
        {"name": "fail", "type": "grid_search", "options": [False, True]},
        {"name": "x", "type": "grid_search", "options": [0.1, 0.3]},
    ]
    state = run(
        **synthetic(
            unique("e2e-failing"),
            hyperparameters=space,
            tune_config={"metric": "score", "mode": "max", "num_samples": 4},
        )
    )
    result = state.result()
    assert len(result["trial_models"]) == 2
    assert all(m["config"]["fail"] is False for m in result["trial_models"])
    import json

    tables = [a for a in flow_artifacts(state.state_details.flow_run_id) if a.type == "table"]
    rows = json.loads(max(tables, key=lambda a: a.created).data)
    assert sorted(r["status"] for r in rows) == ["ERROR", "ERROR", "TERMINATED", "TERMINATED"]


def test_max_concurrent_trials_is_honoured(flow_env):
    result = run(
        **synthetic(
            unique("e2e-serial"),
            hyperparameter={"work_s": 0.4},
            tune_config={
                "metric": "score",
                "mode": "max",
                "num_samples": 3,
                "max_concurrent_trials": 1,
            },
        )
    ).result()
    registry = ModelRegistry()
    spans = sorted(
        (info.start_time, info.end_time)
        for info in (
            mlflow_client().get_run(registry.get(m["model_id"]).run_id).info
            for m in result["trial_models"]
        )
    )
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))


def test_asha_stops_bad_trials_early_and_the_job_still_succeeds(flow_env):
    # The best point runs first; ASHA then stops trials whose partial scores fall
    # below it at the first rung. Stopped trials keep their MLflow run (KILLED)
    # and register the checkpoint of their last report as their model.
    config = {
        "metric": "score",
        "mode": "max",
        "num_samples": 8,
        "max_concurrent_trials": 1,
        "seed": 5,
        "search_alg": {"points_to_evaluate": [{"x": 0.3, "y": 0.7}]},
        "scheduler": {
            "name": "asha",
            "options": {"grace_period": 1, "max_t": 4, "reduction_factor": 2},
        },
    }
    state = run(**synthetic(unique("e2e-asha"), hyperparameter={"steps": 4}, tune_config=config))
    assert state.is_completed(), state
    result = state.result()
    runs = mlflow_client().search_runs(
        [experiment_id()],
        filter_string=f"tags.`mlflow.parentRunId` = '{_parent_run(result)}'",
    )
    assert len(runs) == 8
    killed = [r for r in runs if r.info.status == "KILLED"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert killed, "ASHA stopped no trial"
    assert len(killed) + len(finished) == 8
    registered = {m["trial_id"]: m["model_id"] for m in result["trial_models"]}
    assert set(registered) == {r.data.tags["unitrain.trial_id"] for r in runs}
    for stopped in killed:
        version = mlflow_client().get_model_version(
            "unitrain", str(registered[stopped.data.tags["unitrain.trial_id"]])
        )
        assert 1 <= int(version.tags["unitrain.stopped_at_iteration"]) < 4
    best = result["best_trial"]["config"]
    assert (best["x"], best["y"]) == (0.3, 0.7)

    # Plots that explain the search: in the job's MLflow run, and as Prefect images.
    plots = {a.path for a in mlflow_client().list_artifacts(_parent_run(result), "plots")}
    assert plots == {
        "plots/parallel_coordinates.png",
        "plots/parameter_importance.png",
        "plots/learning_curves.png",
    }
    artifacts = flow_artifacts(state.state_details.flow_run_id)
    images = {a.description: a.data for a in artifacts if a.type == "image"}
    assert len(images) == 3
    assert all(f"run_uuid={_parent_run(result)}" in url for url in images.values())
    summary = next(a.data for a in artifacts if a.type == "markdown")
    assert "[learning curves](" in summary


def test_a_plugin_with_tune_runs_each_trial_through_it(flow_env):
    # The synthetic plugin defines tune(): its intermediate reports (run.report)
    # land in each trial's MLflow run as a history, its returned number is the metric.
    result = run(**synthetic(unique("e2e-tune-fn"), hyperparameter={"steps": 3})).result()
    registry = ModelRegistry()
    assert len(result["trial_models"]) == 4
    for model in result["trial_models"]:
        record = registry.get(model["model_id"])
        history = mlflow_client().get_metric_history(record.run_id, "score")
        steps = sorted((m.step, m.value) for m in history)
        assert [step for step, _ in steps] == [0, 1, 1]  # two reports, then the final value
        assert steps[-1][1] == pytest.approx(model["metrics"]["score"])
        assert record.hyperparameters["steps"] == 3 and record.metrics == model["metrics"]


def _parent_run(result) -> str:
    registry = ModelRegistry()
    child = mlflow_client().get_run(registry.get(result["model_id"]).run_id)
    return child.data.tags["mlflow.parentRunId"]


def test_a_target_stops_the_search_and_the_summary_says_why(flow_env, tmp_path):
    # The best point runs first and reaches the target: the search stops there
    # instead of running all 20 trials, and says so with the compute it used.
    config = {
        "metric": "score",
        "mode": "max",
        "num_samples": 20,
        "max_concurrent_trials": 1,
        "seed": 3,
        "search_alg": {"points_to_evaluate": [{"x": 0.3, "y": 0.7}]},
        "stop": {"target": 0.99},
    }
    state = run(**synthetic(unique("e2e-target"), tune_config=config))
    result = state.result()
    assert result["best_trial"]["metrics"]["score"] == pytest.approx(1.0)
    assert len(result["trial_models"]) < 20
    summary = next(
        a for a in flow_artifacts(state.state_details.flow_run_id) if a.type == "markdown"
    )
    assert "the search stopped: score reached the target 0.99 (1)" in summary.data
    # A plugin that saves a plain folder gets the generic MLflow wrapper.
    import mlflow.pyfunc

    wrapped = mlflow.pyfunc.load_model(
        f"models:/unitrain/{result['model_id']}", dst_path=str(tmp_path)
    )
    assert wrapped.get_raw_model().plugin == "synthetic"
    assert (wrapped.get_raw_model().path / "model.json").exists()
    assert "CPU-hours" in summary.data


def test_keep_models_registers_only_the_best_and_removes_the_other_models(flow_env):
    config = {"metric": "score", "mode": "max", "num_samples": 6, "seed": 4, "keep_models": 2}
    result = run(**synthetic(unique("e2e-keep"), tune_config=config)).result()
    kept = result["trial_models"]
    assert len(kept) == 2
    registry = ModelRegistry()
    job_run = _parent_run(result)
    runs = mlflow_client().search_runs(
        [experiment_id()], filter_string=f"tags.`mlflow.parentRunId` = '{job_run}'"
    )
    assert len(runs) == 6  # every trial keeps its run, parameters and metrics
    scores = sorted((r.data.metrics["score"] for r in runs), reverse=True)
    assert sorted(m["metrics"]["score"] for m in kept) == sorted(scores[:2])
    assert result["model_id"] in {m["model_id"] for m in kept}
    assert len(registry.models(job=_job_of(result))) == 2
    trials_root = Path(kept[0]["trial_logdir"]).parents[1] / "trials"
    with_model = {p.parent.name for p in trials_root.glob("*/model") if any(p.iterdir())}
    assert with_model == {m["trial_id"] for m in kept}


def _job_of(result) -> str:
    return ModelRegistry().get(result["model_id"]).job


def test_a_new_round_extends_the_study_and_keeps_its_best_when_nothing_beats_it(flow_env):
    from unitrain.errors import JobValidationError
    from unitrain.planning import plan_job
    from unitrain.stores.registry import best_alias

    name = unique("e2e-study")
    tune_config = {
        "metric": "score",
        "mode": "max",
        "num_samples": 4,
        "seed": 2,
        "search_alg": "hyperoptsearch",
        "extend": name,  # its own name: each run is a new round of one study
    }
    first = run(**synthetic(name, tune_config=tune_config)).result()
    best_so_far = first["model_id"]

    # The second round runs one poor point: the first round's best stays the best.
    again = {**tune_config, "num_samples": 1}
    again["search_alg"] = {"name": "hyperoptsearch", "points_to_evaluate": [{"x": 1, "y": 0}]}
    round_two = synthetic(name, tune_config=again, checkpoint="best")
    planned = plan_job({k: v for k, v in round_two.items() if k != "plugin"}, "synthetic")
    assert f"checkpoint 'best' resolved to model {best_so_far}" in planned.notes
    assert len(planned.earlier) == 4
    state = run(**round_two)
    result = state.result()
    assert result["model_id"] == best_so_far
    assert result["best_trial"]["trial_id"].startswith(f"{name}/")
    assert len(result["trial_models"]) == 1  # the new trial's model; the earlier ones stay
    best_version = mlflow_client().get_model_version_by_alias("unitrain", best_alias(name))
    assert int(best_version.version) == best_so_far
    artifacts = flow_artifacts(state.state_details.flow_run_id)
    rows = json.loads(
        max((a for a in artifacts if a.type == "table"), key=lambda a: a.created).data
    )
    assert [r["status"] for r in rows].count("EARLIER") == 4
    assert [r["trial_id"] for r in rows if r["best"]] == [result["best_trial"]["trial_id"]]
    summary = next(a for a in artifacts if a.type == "markdown")
    assert f"extends a study: 4 earlier trial(s) of `{name}`" in summary.data
    assert "| 5 | `" in summary.data  # the chart has every trial of the study

    # Another space is refused before anything runs, naming the entry that differs.
    other = [XY[0], {"name": "y", "type": "uniform", "min": 0, "max": 2}]
    with pytest.raises(JobValidationError, match="'y' is .* here, .* there"):
        plan_job(
            {
                "name": unique("e2e-other"),
                "dataset": 1,
                "is_tune": True,
                "tune_config": again,
                "hyperparameters": other,
            },
            "synthetic",
        )


def test_short_trials_share_two_actors_instead_of_starting_a_worker_each(flow_env, tmp_path):
    # Trials far shorter than a worker's start: with actors reused as Ray Tune
    # does by default, one actor ends up running nearly all of them while a new
    # worker is started (and stopped) for each. Here both slots' actors run trials.
    import os

    from ray import tune

    from unitrain._compat import install_search_patches

    install_search_patches(lambda name: False)

    def trainable(config):
        import time

        time.sleep(0.1)
        tune.report({"score": config["x"], "worker": os.getpid()})

    results = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=60, max_concurrent_trials=2, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    workers = [r.metrics["worker"] for r in results]
    assert len(workers) == 60
    counts = sorted(workers.count(pid) for pid in set(workers))
    assert 2 <= len(counts) <= 3 and counts[-2] >= 5, counts
