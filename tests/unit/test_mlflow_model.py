"""Model folders as MLflow Models: the generic wrapper, and a plugin's own flavor."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import mlflow.pyfunc
import pytest

from unitrain.mlflow_model import MLMODEL, add_generic_wrapper, save_flavor


@pytest.fixture
def plugin(monkeypatch):
    """A plugin named ``fake`` (its module is what the test makes of it)."""
    from unitrain import plugin_loader

    module = types.ModuleType("fake_model_plugin")
    module.train = lambda run, dataset, hyperparameter, checkpoint, **kwargs: None
    monkeypatch.setattr(plugin_loader, "available_plugins", lambda: {"fake": "fake_model_plugin"})
    monkeypatch.setitem(sys.modules, "fake_model_plugin", module)
    return module


def saved_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.txt").write_text("3")
    return folder


def test_a_plain_folder_loads_with_pyfunc_and_predicts_through_the_plugin(plugin, tmp_path):
    class Scaler:
        def __init__(self, path: str) -> None:
            self.factor = float((Path(path) / "weights.txt").read_text())

        def predict(self, inputs):
            return [value * self.factor for value in inputs]

    plugin.load_model = Scaler
    folder = saved_folder(tmp_path)
    add_generic_wrapper(folder, "fake")

    model = mlflow.pyfunc.load_model(str(folder))
    assert model.predict([1.0, 2.0]) == [3.0, 6.0]
    assert model.get_raw_model().plugin == "fake"
    assert (folder / "weights.txt").read_text() == "3"  # the plugin's files are untouched


def test_a_plugin_without_load_model_still_loads_and_says_what_is_missing(plugin, tmp_path):
    folder = saved_folder(tmp_path)
    add_generic_wrapper(folder, "fake")

    model = mlflow.pyfunc.load_model(str(folder))
    assert model.get_raw_model().path == folder
    with pytest.raises(
        TypeError, match=r"plugin 'fake' saves its model as a folder only.*load_model"
    ):
        model.predict([1.0])


def test_a_folder_that_is_an_mlflow_model_already_is_left_alone(tmp_path):
    folder = saved_folder(tmp_path)
    (folder / MLMODEL).write_text("flavors: {}\n")
    add_generic_wrapper(folder, "fake")
    assert (folder / MLMODEL).read_text() == "flavors: {}\n"


def fake_flavor(files: dict[str, str]) -> types.SimpleNamespace:
    saved: dict = {}

    def save_model(model, path, **kwargs):
        Path(path).mkdir()
        for name, text in files.items():
            (Path(path) / name).write_text(text)
        saved.update(model=model, **kwargs)

    return types.SimpleNamespace(
        save_model=save_model, get_default_pip_requirements=lambda: ["torch==2.0"], saved=saved
    )


def test_a_flavor_is_saved_beside_the_plugin_files_with_its_default_requirements(tmp_path):
    folder = saved_folder(tmp_path)
    flavor = fake_flavor({MLMODEL: "flavors: {pytorch: {}}\n", "requirements.txt": "torch"})
    save_flavor(folder, flavor, "the model", input_example=[1])

    assert sorted(p.name for p in folder.iterdir()) == [MLMODEL, "requirements.txt", "weights.txt"]
    assert flavor.saved == {
        "model": "the model",
        "input_example": [1],
        "pip_requirements": ["torch==2.0"],
    }
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
    with pytest.raises(ValueError, match="holds an MLflow model already"):
        save_flavor(folder, flavor, "again")


def test_a_flavor_never_overwrites_a_file_the_plugin_saved(tmp_path):
    folder = saved_folder(tmp_path)
    with pytest.raises(ValueError, match=r"writes weights\.txt, which the plugin saved"):
        save_flavor(folder, fake_flavor({MLMODEL: "x", "weights.txt": "0"}), "the model")
    assert (folder / "weights.txt").read_text() == "3"
    assert not (folder / MLMODEL).exists()


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[float], params=None) -> list[float]:
        return [2 * value for value in model_input]


def test_a_plugin_hands_over_its_own_python_model_through_the_run(tmp_path):
    from unitrain.plugin_api import TrainRun

    folder = saved_folder(tmp_path)
    run = TrainRun(checkpoint_output=str(folder))
    run.log_model(mlflow.pyfunc, Doubler())

    model = mlflow.pyfunc.load_model(str(folder))
    assert model.predict([1.0, 2.0]) == [2.0, 4.0]
    assert (folder / "weights.txt").read_text() == "3"
