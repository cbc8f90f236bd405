"""The behaviour every plugin must have. Subclass ``PluginContract`` and set ``plugin_name``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unitrain.plugin_api import Checkpoint, TrainRun
from unitrain.plugin_loader import load_plugin
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.registry import ModelRecord


class PluginContract:
    plugin_name: str = ""
    dataset_id: int = 1
    #: hyperparameters small enough to train in a second or two
    quick: dict[str, Any] = {}

    def _train(self, output: Path, checkpoint: Checkpoint | None = None) -> tuple[TrainRun, Any]:
        plugin = load_plugin(self.plugin_name)
        catalog = DatasetCatalog()
        dataset = catalog.prepare(catalog.get(self.dataset_id))
        run = TrainRun(checkpoint_output=str(output))
        hyperparameter = plugin.validate_hyperparameter(dict(self.quick))
        return run, plugin.train(run, dataset, hyperparameter, checkpoint)

    def test_train_saves_a_model_into_checkpoint_output(self, home, tmp_path):
        self._train(tmp_path / "model")
        assert any((tmp_path / "model").iterdir())

    def test_train_logs_metrics_through_the_run(self, home, tmp_path):
        run, _ = self._train(tmp_path / "model")
        metrics = [r for r in run.records if "key" in r or "report" in r]
        assert metrics, "the plugin logged no metric through run.log_metric or run.report"
        for record in metrics:
            if "key" in record:
                assert isinstance(record["category"], str) and isinstance(record["value"], float)
            else:
                assert record["report"] and all(
                    isinstance(v, float) for v in record["report"].values()
                )

    def test_train_resumes_from_its_own_checkpoint(self, home, tmp_path):
        self._train(tmp_path / "first")
        record = ModelRecord(1, "job", self.plugin_name, "1", "", {}, {}, "", "", False, 0)
        run, _ = self._train(tmp_path / "second", Checkpoint(1, str(tmp_path / "first"), record))
        assert any((tmp_path / "second").iterdir())

    def test_declares_a_schema_that_rejects_unknown_keys(self):
        import pytest

        from unitrain.errors import JobValidationError

        plugin = load_plugin(self.plugin_name)
        assert plugin.schema is not None, "a bundled plugin declares its Hyperparameters"
        with pytest.raises(JobValidationError, match="not_a_real_key"):
            plugin.validate_hyperparameter({"not_a_real_key": 1})

    def test_returns_its_final_metrics(self, home, tmp_path):
        _, returned = self._train(tmp_path / "model")
        assert isinstance(returned, dict) and returned
        assert all(isinstance(v, float) for v in returned.values())
