from __future__ import annotations

import pytest

from tests.plugin_contract import PluginContract
from unitrain import plugin_loader as plugins_module
from unitrain.errors import JobValidationError, NotFoundError
from unitrain.plugin_api import Checkpoint, TrainRun
from unitrain.plugin_loader import DEFAULT_PLUGIN, available_plugins, load_plugin
from unitrain.stores.registry import ModelRecord


class TestDigitsMLP(PluginContract):
    plugin_name = "digits_mlp"
    quick = {"epochs": 3, "batch_size": 64}

    def test_resume_continues_from_the_saved_weights(self, home, tmp_path):
        import torch

        self._train(tmp_path / "first")
        first = torch.load(tmp_path / "first" / "model.pt", weights_only=True)
        record = ModelRecord(1, "job", "digits_mlp", "1", "", {}, {}, "", "", False, 0)
        run, _ = self._train(tmp_path / "second", Checkpoint(1, str(tmp_path / "first"), record))
        second = torch.load(tmp_path / "second" / "model.pt", weights_only=True)
        assert (first["epochs_done"], second["epochs_done"]) == (3, 6)
        assert [r["metrics"]["epoch"] for r in run.records if r.get("key") == "loss"] == [3, 4, 5]
        assert any("resumed from model 1 after 3 epochs" in m for m in run.messages)

    def test_learns_the_digits(self, home, tmp_path):
        self.quick = {"epochs": 15}
        run, metrics = self._train(tmp_path / "model")
        assert metrics["validation_accuracy"] > 0.9
        assert any(r.get("category") == "predictions" for r in run.records)


class TestSynthetic(PluginContract):
    plugin_name = "synthetic"
    quick = {"x": 0.3, "y": 0.7}


def test_bundled_plugin_is_discovered_and_default():
    assert DEFAULT_PLUGIN in available_plugins()
    assert load_plugin().name == DEFAULT_PLUGIN


def test_unknown_plugin_lists_available():
    with pytest.raises(
        NotFoundError, match="'os.path' is not an installed plugin; available: digits_mlp"
    ):
        load_plugin("os.path")


def test_entry_point_plugins_are_discovered(monkeypatch):
    class EntryPoint:
        name, value = "third_party", "json"

    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [EntryPoint()])
    available_plugins.cache_clear()
    try:
        assert available_plugins()["third_party"] == "json"
        with pytest.raises(Exception, match="has no train\\(\\) function"):
            load_plugin("third_party")
    finally:
        available_plugins.cache_clear()


def test_schema_errors_name_the_key_and_rule():
    plugin = load_plugin("digits_mlp")
    with pytest.raises(
        JobValidationError,
        match=r"hyperparameter.optimizer: Input should be 'adam', 'sgd' or 'rmsprop'",
    ):
        plugin.validate_hyperparameter({"optimizer": "lbfgs"})
    with pytest.raises(
        JobValidationError,
        match=r"hyperparameter.epochs: Input should be greater than or equal to 1",
    ):
        plugin.validate_hyperparameter({"epochs": 0})


def test_defaults_are_filled_in():
    assert load_plugin("digits_mlp").validate_hyperparameter({"epochs": 2})["optimizer"] == "adam"


def test_run_adds_trial_id_to_every_record():
    run = TrainRun(trial_id="abc123")
    run.log_metric("training", "loss", 0.5, epoch=10)
    run.log_visualization("predictions", "train", 1, b"png")
    assert run.records[0] == {
        "category": "training",
        "key": "loss",
        "value": 0.5,
        "metrics": {"epoch": 10},
        "trial_id": "abc123",
    }
    assert run.records[1]["trial_id"] == "abc123"
