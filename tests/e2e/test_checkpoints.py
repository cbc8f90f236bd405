"""Checkpoints travel with reports, for real: ASHA keeps the models of the trials it stops,
and PBT restarts a trial from another trial's checkpoint."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_train_flow import flow_artifacts, run
from tests.stores import mlflow_client
from unitrain.stores.registry import ModelRegistry

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_asha_with_max_t_the_epochs_keeps_a_model_for_every_trial(flow_env, tmp_path):
    name = unique("e2e-asha")
    state = run(
        name=name,
        dataset=1,
        is_tune=True,
        hyperparameter={"epochs": 4},
        hyperparameters=[
            {"name": "learning_rate", "type": "loguniform", "min": 1e-4, "max": 0.05, "base": 10}
        ],
        tune_config={
            "metric": "validation_accuracy",
            "mode": "max",
            "num_samples": 6,
            "max_concurrent_trials": 2,
            "seed": 1,
            "scheduler": {"name": "asha", "options": {"max_t": 4, "grace_period": 1}},
        },
    )
    assert state.is_completed(), state
    result = state.result()
    assert len(result["trial_models"]) == 6  # stopped or not, each trial has its model
    registry = ModelRegistry()
    records = [registry.get(m["model_id"]) for m in result["trial_models"]]
    stopped = {
        r.trial_id: int(v.tags["unitrain.stopped_at_iteration"])
        for r in records
        if "unitrain.stopped_at_iteration"
        in (v := mlflow_client().get_model_version("unitrain", str(r.model_id))).tags
    }
    assert stopped, "ASHA stopped no trial"
    assert set(stopped.values()) <= {1, 2, 3, 4}
    assert 4 in stopped.values(), "no trial was stopped at max_t, the best ones' end"
    best = registry.get(result["model_id"])
    assert best.metrics["validation_accuracy"] == max(
        m["metrics"]["validation_accuracy"] for m in result["trial_models"]
    )
    # a stopped trial's model is the checkpoint of its last report: it loads and predicts
    import mlflow.pyfunc
    import numpy as np

    trial = next(r for r in records if r.trial_id in stopped)
    model = mlflow.pyfunc.load_model(f"models:/unitrain/{trial.model_id}", dst_path=str(tmp_path))
    scores = model.predict(np.zeros((2, 64), dtype=np.float32))
    assert np.asarray(scores).shape == (2, 10)


def test_pbt_restarts_a_trial_from_another_trial_s_checkpoint(flow_env, tmp_path):
    name = unique("e2e-pbt")
    state = run(
        name=name,
        dataset=1,
        is_tune=True,
        plugin="synthetic",
        hyperparameter={"steps": 8, "work_s": 2.4},
        hyperparameters=[{"name": "x", "type": "uniform", "min": 0, "max": 1}],
        tune_config={
            "metric": "score",
            "mode": "max",
            "num_samples": 4,
            "max_concurrent_trials": 4,
            "seed": 2,
            "scheduler": {
                "name": "pbt",
                "options": {
                    "perturbation_interval": 2,
                    "hyperparam_mutations": {"x": {"type": "uniform", "min": 0, "max": 1}},
                },
            },
        },
    )
    assert state.is_completed(), state
    result = state.result()
    registry = ModelRegistry()
    clones = {}
    for trial in result["trial_models"]:
        folder = registry.download(trial["model_id"], tmp_path / trial["trial_id"])
        trained_by = json.loads((folder / "model.json").read_text())["trained_by"]
        others = [part for part in trained_by if part[0] != trial["trial_id"]]
        if others:
            clones[trial["trial_id"]] = (trained_by, registry.get(trial["model_id"]).run_id)
    assert clones, "no trial continued from another trial's checkpoint"
    for trial_id, (trained_by, run_id) in clones.items():
        # the steps go on where the donor's stopped: the clone did not start again
        assert [part[1] for part in trained_by[1:]] == [part[2] for part in trained_by[:-1]]
        lineage = json.loads(mlflow_client().get_run(run_id).data.tags["unitrain.lineage"])
        donors = [entry["from"] for entry in lineage]
        assert set(donors) & {part[0] for part in trained_by if part[0] != trial_id}
        assert all("x" in entry["changed"] for entry in lineage)
    tables = [a for a in flow_artifacts(state.state_details.flow_run_id) if a.type == "table"]
    table = max(tables, key=lambda a: a.created)  # the final one
    cloned = [row for row in json.loads(table.data) if row.get("cloned")]
    assert {row["trial_id"] for row in cloned} == set(clones)
