"""A saved model as an MLflow Model: what makes every registered version loadable by MLflow.

A plugin saves its model into ``run.checkpoint_output`` as it likes. That
folder becomes an MLflow Model (an ``MLmodel`` file at its root) in one of two
ways:

- the plugin hands over its own flavor, e.g. ``run.log_model(mlflow.pytorch,
  model, signature=..., input_example=...)``, or its own ``python_function``
  model, ``run.log_model(mlflow.pyfunc, MyPythonModel())``: :func:`save_flavor`
  saves it with MLflow's flavor into the folder, beside the plugin's own files;
- otherwise, when the plugin returns, :func:`add_generic_wrapper` writes a
  ``python_function`` flavor whose loader is this module. Its ``predict`` calls
  the plugin's optional ``load_model(path)`` (which returns an object with
  ``predict(inputs)``); a plugin without one still loads, and ``predict`` says
  what is missing.

The plugin's own files stay where it put them, so checkpoints resume from
these folders as they do from versions made before (plain folders).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from unitrain.plugin_loader import load_plugin

__all__ = ["MLMODEL", "PluginModel", "add_generic_wrapper", "save_flavor"]

MLMODEL = "MLmodel"
#: the key in ``MLmodel``'s metadata naming the plugin that saved the model
PLUGIN_KEY = "unitrain_plugin"


def save_flavor(folder: Path, flavor: ModuleType, model: Any, **kwargs: Any) -> None:
    """Save ``model`` with an MLflow flavor module (``mlflow.pytorch``, ...) into ``folder``.

    The flavor's files join what is in the folder already; a name both use is
    an error rather than a silent overwrite. Without ``pip_requirements`` the
    flavor's default requirements are written: MLflow would otherwise infer
    them by loading the model in a new Python process, seconds per trial.
    """
    if _is_generic_wrapper(folder):
        # written when the folder was a report's checkpoint; the flavor replaces it
        (folder / MLMODEL).unlink()
    if (folder / MLMODEL).exists():
        raise ValueError(f"{folder} holds an MLflow model already (log_model is called once)")
    folder.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=folder.parent, prefix=".mlflow-") as staging,
        _quiet_local_version_warning(),
    ):
        if not {"pip_requirements", "extra_pip_requirements", "conda_env"} & set(kwargs):
            kwargs["pip_requirements"] = _default_requirements(flavor)
        saved = Path(staging) / "model"
        if getattr(flavor, "__name__", "") == "mlflow.pyfunc":
            # pyfunc's save_model takes the path first and the model by name
            flavor.save_model(path=str(saved), python_model=model, **kwargs)
        else:
            flavor.save_model(model, path=str(saved), **kwargs)
        clashes = sorted(entry.name for entry in saved.iterdir() if (folder / entry.name).exists())
        if clashes:
            raise ValueError(
                f"the MLflow flavor writes {', '.join(clashes)}, which the plugin saved in "
                f"{folder} already; rename the plugin's files"
            )
        for entry in saved.iterdir():
            shutil.move(str(entry), folder / entry.name)


@contextlib.contextmanager
def _quiet_local_version_warning() -> Iterator[None]:
    """MLflow warns, once per model, that a CPU build's ``+cpu`` label was left out of the
    requirements, as it should be: noise in every trial's log."""
    logger = logging.getLogger("mlflow.utils.requirements_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def add_generic_wrapper(folder: Path, plugin: str) -> None:
    """Make a plugin's plain model folder an MLflow Model (nothing to do if it is one)."""
    if (folder / MLMODEL).exists():
        return
    import datetime
    import platform
    import uuid

    import yaml

    # Written by hand rather than with mlflow.models.Model: a trial's worker
    # then never imports MLflow.
    description = {
        "flavors": {
            "python_function": {
                "loader_module": __name__,
                "python_version": platform.python_version(),
            }
        },
        "mlflow_version": _mlflow_version(),
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {PLUGIN_KEY: plugin},
    }
    (folder / MLMODEL).write_text(yaml.safe_dump(description, sort_keys=False))


def _is_generic_wrapper(folder: Path) -> bool:
    import yaml

    try:
        description = yaml.safe_load((folder / MLMODEL).read_text())
    except (OSError, yaml.YAMLError):
        return False
    flavor = (description or {}).get("flavors", {}).get("python_function", {})
    return isinstance(flavor, dict) and flavor.get("loader_module") == __name__


class PluginModel:
    """What ``mlflow.pyfunc.load_model`` returns the inside of, for a generic wrapper."""

    def __init__(self, path: str | Path) -> None:
        import yaml

        self.path = Path(path)
        description = yaml.safe_load((self.path / MLMODEL).read_text())
        self.plugin = str((description.get("metadata") or {}).get(PLUGIN_KEY, ""))
        loader = getattr(load_plugin(self.plugin).module, "load_model", None)
        self.predictor = loader(str(self.path)) if loader is not None else None

    def get_raw_model(self) -> PluginModel:
        """What ``PyFuncModel.get_raw_model()`` returns: this (path, plugin, predictor)."""
        return self

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        if self.predictor is None:
            raise TypeError(
                f"plugin {self.plugin!r} saves its model as a folder only ({self.path}); "
                "to predict through MLflow, give the plugin a load_model(path) function that "
                "returns an object with predict(inputs), or save with run.log_model(...)"
            )
        return self.predictor.predict(model_input)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> PluginModel:
    """MLflow's entry point for a ``python_function`` flavor whose loader is this module."""
    return PluginModel(data_path)


@functools.cache
def _mlflow_version() -> str:
    # Reading a package's metadata parses files: a third of a short trial's time.
    from importlib.metadata import version

    return version("mlflow")


def _default_requirements(flavor: ModuleType) -> list[str]:
    defaults = getattr(flavor, "get_default_pip_requirements", None)
    try:
        return list(defaults()) if defaults else [_mlflow_requirement()]
    except TypeError:  # a flavor whose defaults depend on the model (transformers)
        return [_mlflow_requirement()]


def _mlflow_requirement() -> str:
    return f"mlflow=={_mlflow_version()}"
