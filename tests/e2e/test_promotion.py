"""The promotion gate, for real: jobs of the train flow on the flow's Ray, the alias in
MLflow's registry, the decision in the job's result, its run and its summary."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from tests.e2e.test_train_flow import flow_artifacts, run
from tests.stores import mlflow_client
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.mlflow_store import TAG

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def holder(alias: str) -> int:
    return int(mlflow_client().get_model_version_by_alias("unitrain", alias).version)


def train_synthetic(alias: str, x: float, dataset: int = 1, **promotion):
    """A training job whose score is 0.64 - (x - 0.3)^2 (the synthetic bowl at y = 0.1)."""
    state = run(
        name=unique("e2e-promote"),
        dataset=dataset,
        plugin="synthetic",
        hyperparameter={"x": x, "y": 0.1},
        promotion={"alias": alias, "metric": "score", "mode": "max", **promotion},
    )
    assert state.is_completed(), state
    return state


def test_a_worse_round_keeps_the_alias_and_a_better_one_takes_it(flow_env):
    alias = unique("champion")
    first = train_synthetic(alias, x=0.1).result()  # 0.6
    assert first["promotion"]["promoted"] and holder(alias) == first["model_id"]

    worse_state = train_synthetic(alias, x=0.9)  # 0.28
    worse = worse_state.result()
    old, new = first["model_id"], worse["model_id"]
    assert worse["promotion"]["promoted"] is False
    assert worse["promotion"]["model_id"] == old and holder(alias) == old
    kept = f"kept model {old} (0.6) over model {new} (0.28)"
    assert worse["promotion"]["message"].startswith(kept)
    # ... said in the job's summary and recorded on its MLflow run too
    summary = next(
        a for a in flow_artifacts(worse_state.state_details.flow_run_id) if a.type == "markdown"
    )
    assert kept in summary.data
    job_run = mlflow_client().get_model_version("unitrain", str(new)).tags[TAG.JOB_RUN]
    assert mlflow_client().get_run(job_run).data.tags[TAG.PROMOTION].startswith("kept")

    # Better, but not by more than min_delta: kept.
    close = train_synthetic(alias, x=0.2, min_delta=0.05).result()  # 0.63
    assert close["promotion"]["promoted"] is False and holder(alias) == old

    better = train_synthetic(alias, x=0.3).result()  # 0.64
    assert better["promotion"]["promoted"] is True
    assert holder(alias) == better["model_id"]
    assert better["promotion"]["message"].startswith(
        f"promoted model {better['model_id']} (0.64) to {alias!r} over model {old} (0.6)"
    )


def test_a_search_promotes_its_best_by_the_searchs_metric(flow_env):
    alias = unique("served")
    first = train_synthetic(alias, x=0.1)  # 0.6
    state = run(
        name=unique("e2e-promote-search"),
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"y": 0.1},
        hyperparameters=[{"name": "x", "type": "grid_search", "options": [0.0, 0.3]}],
        tune_config={"metric": "score", "mode": "max", "max_concurrent_trials": 2},
        promotion={"alias": alias},
    )
    assert state.is_completed(), state
    result = state.result()
    assert result["best_trial"]["config"]["x"] == 0.3
    assert result["promotion"]["promoted"] is True
    assert holder(alias) == result["model_id"] != first.result()["model_id"]


def test_on_other_data_a_plugin_without_evaluate_keeps_the_alias_and_says_why(flow_env, tmp_path):
    alias = unique("champion")
    first = train_synthetic(alias, x=0.9).result()
    path = tmp_path / "other.npz"
    np.savez(path, X=np.ones((10, 2), dtype="float32"), y=np.arange(10) % 2)
    other = DatasetCatalog().add(str(path), name=unique("other"))

    refused = train_synthetic(alias, x=0.3, dataset=other.id).result()  # better, but elsewhere
    assert refused["promotion"]["promoted"] is False and holder(alias) == first["model_id"]
    message = refused["promotion"]["message"]
    assert message.startswith(f"kept model {first['model_id']} as {alias!r} without comparing")
    assert "plugin 'synthetic' has no evaluate(model_path, dataset)" in message


def test_on_other_data_the_plugins_evaluate_scores_both_models(flow_env, tmp_path):
    from sklearn.datasets import load_digits

    alias = unique("digits")
    promotion = {"alias": alias, "metric": "validation_accuracy", "mode": "max"}
    first = run(
        name=unique("e2e-promote-digits"),
        dataset=1,
        hyperparameter={"epochs": 1, "hidden_units": 8},
        promotion=promotion,
    )
    assert first.is_completed(), first
    digits = load_digits()
    path = tmp_path / "digits_part.npz"
    np.savez(path, X=digits.data[:600].astype("float32"), y=digits.target[:600])
    part = DatasetCatalog().add(str(path), name=unique("digits-part"))
    second = run(
        name=unique("e2e-promote-digits"),
        dataset=part.id,
        hyperparameter={"epochs": 1, "hidden_units": 8},
        promotion=promotion,
    )
    assert second.is_completed(), second
    outcome = second.result()["promotion"]
    # Both scored again on the new data by digits_mlp's evaluate(), as the test does here.
    from unitrain.plugins.digits_mlp import evaluate
    from unitrain.stores.registry import ModelRegistry

    data = DatasetCatalog().prepare(part)
    old, new = first.result()["model_id"], second.result()["model_id"]
    score = {
        model: evaluate(str(ModelRegistry().download(model, tmp_path / str(model))), data)[
            "validation_accuracy"
        ]
        for model in (old, new)
    }
    assert "without comparing" not in outcome["message"]
    assert f"model {old} ({score[old]:.4g})" in outcome["message"]
    assert f"model {new} ({score[new]:.4g})" in outcome["message"]
    assert outcome["promoted"] is (score[new] > score[old])
    assert holder(alias) == (new if score[new] > score[old] else old)


def test_a_model_without_the_metric_never_takes_the_alias(flow_env):
    alias = unique("champion")
    result = train_synthetic(alias, x=0.3, metric="scroe").result()  # misspelt
    assert result["promotion"]["promoted"] is False
    assert result["promotion"]["message"].startswith(
        f"model {result['model_id']} has no 'scroe' (its metrics: cost, score)"
    )
    with pytest.raises(Exception, match="not found|RESOURCE_DOES_NOT_EXIST|alias"):
        holder(alias)
