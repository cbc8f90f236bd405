"""One path runs a plugin, in training mode and for a trial: results, run states, errors."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from tests.stores import mlflow_client, new_run
from unitrain.planning import plan_job
from unitrain.plugin_runner import PluginCall, PluginError, normalise_result, run_plugin
from unitrain.run_sinks import MlflowSink
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore


def test_return_values_are_normalised():
    assert normalise_result({"accuracy": 0.9, "loss": 0.1}, "accuracy") == {
        "accuracy": 0.9,
        "loss": 0.1,
    }
    assert normalise_result(0.92, "accuracy") == {"accuracy": 0.92}
    assert normalise_result(None, "accuracy") == {}
    with pytest.raises(TypeError, match="return a number or a dict"):
        normalise_result("high", "accuracy")
    with pytest.raises(TypeError, match="return a number or a dict"):
        normalise_result(True, "accuracy")


@pytest.fixture
def fake_plugin(monkeypatch):
    """A plugin named ``fake`` whose ``train`` the test writes."""
    from unitrain import plugin_loader

    module = types.ModuleType("fake_plugin")

    def train(run, dataset, hyperparameter, checkpoint, **kwargs):
        raise AssertionError("the test sets train")

    module.train = train
    monkeypatch.setattr(plugin_loader, "available_plugins", lambda: {"fake": "fake_plugin"})
    monkeypatch.setitem(__import__("sys").modules, "fake_plugin", module)
    return module


def call_for(tmp_path: Path, *, trial_id=None, metric="objective", required="", reporter=None):
    plan = plan_job({"name": "job", "dataset": 1, "hyperparameter": {}}, "fake")
    catalog = DatasetCatalog()
    registry = ModelRegistry()
    run_id = new_run()
    call = PluginCall(
        plan=plan,
        dataset=catalog.prepare(catalog.get(1)),
        hyperparameter={"lr": 0.1},
        sink=MlflowSink(run_id, RunStore()),
        output=tmp_path / "model",
        metric=metric,
        required_metric=required,
        trial_id=trial_id,
        reporter=reporter,
    )
    return call, registry, run_id


def save_model(run):
    Path(run.checkpoint_output).mkdir(parents=True, exist_ok=True)
    (Path(run.checkpoint_output) / "model.json").write_text("{}")


def test_a_number_returned_in_training_mode_is_kept(home, tmp_path, fake_plugin):
    def train(run, dataset, hyperparameter, checkpoint, **kwargs):
        save_model(run)
        return 0.75

    fake_plugin.train = train
    call, registry, run_id = call_for(tmp_path)
    result = run_plugin(call)
    assert result.metrics == {"objective": 0.75}
    assert result.model_dir == str(tmp_path / "model")
    # the saved folder is an MLflow Model (the generic wrapper names the plugin)
    assert "unitrain_plugin: fake" in (tmp_path / "model" / "MLmodel").read_text()
    mlflow_run = mlflow_client().get_run(run_id)
    assert mlflow_run.data.metrics["objective"] == 0.75
    assert mlflow_run.data.params["lr"] == "0.1"


def test_a_number_returned_by_a_trial_is_its_metric(home, tmp_path, fake_plugin):
    fake_plugin.train = lambda run, *a, **k: 0.5
    call, registry, run_id = call_for(tmp_path, trial_id="t1", metric="score", required="score")
    result = run_plugin(call)
    assert result.metrics == {"score": 0.5} and result.model_dir == ""


def test_a_failing_plugin_says_why_and_keeps_what_it_logged(home, tmp_path, fake_plugin):
    def train(run, dataset, hyperparameter, checkpoint, **kwargs):
        run.log_metric("training", "loss", 0.5, epoch=0)
        raise RuntimeError("out of patience")

    fake_plugin.train = train
    call, registry, run_id = call_for(tmp_path)
    with pytest.raises(PluginError, match="plugin 'fake' failed: RuntimeError: out of patience"):
        run_plugin(call)
    # what the plugin logged before it failed is kept
    assert [m.value for m in mlflow_client().get_metric_history(run_id, "training/loss")] == [0.5]


def test_a_stopped_plugin_is_not_a_failed_one(home, tmp_path, fake_plugin):
    def train(run, dataset, hyperparameter, checkpoint, **kwargs):
        raise SystemExit(0)  # how Ray stops a trial inside tune.report

    fake_plugin.train = train
    call, registry, run_id = call_for(tmp_path, trial_id="t1")
    with pytest.raises(SystemExit):  # passes through: the caller records KILLED
        run_plugin(call)


def test_a_non_finite_objective_fails_the_trial(home, tmp_path, fake_plugin):
    fake_plugin.train = lambda run, *a, **k: {"score": float("nan")}
    call, registry, run_id = call_for(tmp_path, trial_id="t1", metric="score", required="score")
    with pytest.raises(PluginError, match="'score' is nan, not a finite number"):
        run_plugin(call)


def test_reports_go_to_mlflow_and_to_the_reporter(home, tmp_path, fake_plugin):
    sent = []

    def train(run, dataset, hyperparameter, checkpoint, **kwargs):
        for epoch in range(3):
            run.report({"score": epoch / 10, "note": "text is not a metric"}, epoch=epoch)
        save_model(run)

    fake_plugin.train = train
    call, registry, run_id = call_for(tmp_path, trial_id="t1", metric="score", reporter=sent.append)
    result = run_plugin(call)
    assert [r["score"] for r in sent] == [0.0, 0.1, 0.2] and sent[-1]["epoch"] == 2
    assert result.metrics == {"score": 0.2}
    history = mlflow_client().get_metric_history(run_id, "score")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 0.1), (2, 0.2)]


def test_a_plugin_with_tune_is_called_through_it_in_a_trial(home, tmp_path, fake_plugin):
    calls = []
    fake_plugin.train = lambda run, dataset, hp, ckpt, **k: calls.append("train") or 0.1
    fake_plugin.tune = lambda hp, run, dataset, ckpt, **k: calls.append(("tune", hp)) or 0.9
    call, registry, run_id = call_for(tmp_path, trial_id="t1", metric="score")
    assert run_plugin(call).metrics == {"score": 0.9}
    call, registry, run_id = call_for(tmp_path)
    run_plugin(call)
    assert calls == [("tune", {"lr": 0.1}), "train"]
    assert json.dumps(calls[0][1])  # the plugin got a plain dict
