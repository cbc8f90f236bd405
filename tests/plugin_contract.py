"""The behaviour every plugin must have. Subclass ``PluginContract`` and set ``plugin_name``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unitrain.catalog import DatasetCatalog
from unitrain.plugins import load_plugin
from unitrain.registry import Checkpoint, ModelRecord
from unitrain.run import TrainRun


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
        assert run.records and all(
            {"category", "key", "value"} <= set(r) for r in run.records if "key" in r
        )

    def test_train_resumes_from_its_own_checkpoint(self, home, tmp_path):
        self._train(tmp_path / "first")
        record = ModelRecord(1, "job", self.plugin_name, "1", "", {}, {}, "", "", False, 0)
        run, _ = self._train(tmp_path / "second", Checkpoint(1, str(tmp_path / "first"), record))
        assert any((tmp_path / "second").iterdir())

    def test_schema_rejects_unknown_keys(self):
        plugin = load_plugin(self.plugin_name)
        if plugin.schema is None:
            return
        import pytest

        from unitrain.errors import JobValidationError

        with pytest.raises(JobValidationError, match="not_a_real_key"):
            plugin.validate_hyperparameter({"not_a_real_key": 1})
