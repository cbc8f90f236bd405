"""Plugins: the model code a job runs, found by name only.

A plugin is a module with ``train(run, dataset, hyperparameter, checkpoint,
**kwargs)``, optionally ``tune(hyperparameter, run, dataset, checkpoint,
**kwargs)``, optionally ``Hyperparameters``, a pydantic model that
validates the ``hyperparameter`` object (unknown keys are then rejected), and
optionally ``evaluate(model_path, dataset)``, which scores one of its models on
a dataset and returns its metrics.

Plugins are discovered in two places, and a job may only name one of them
(never an import path): the bundled ``plugins/<name>/`` packages (installed as
``unitrain.plugins.<name>``), and the
entry-point group ``unitrain.plugins`` of installed distributions::

    [project.entry-points."unitrain.plugins"]
    my_model = "my_package.my_plugin"
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from unitrain.errors import JobValidationError, NotFoundError, UnitrainError
from unitrain.job.search_space import Distribution

__all__ = ["DEFAULT_PLUGIN", "ENTRY_POINT_GROUP", "Plugin", "available_plugins", "load_plugin"]

DEFAULT_PLUGIN = "digits_mlp"
ENTRY_POINT_GROUP = "unitrain.plugins"


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin."""

    name: str
    #: the plugin's module (or, for an entry point "module:object", that object)
    module: ModuleType | Any

    @property
    def train(self) -> Callable[..., Any]:
        return self.module.train  # type: ignore[no-any-return]

    @property
    def tune(self) -> Callable[..., Any] | None:
        return getattr(self.module, "tune", None)

    @property
    def evaluate(self) -> Callable[..., Any] | None:
        """``evaluate(model_path, dataset) -> metrics``: a model of this plugin scored on
        a dataset (the promotion gate's comparison on new data), if the plugin has one."""
        found = getattr(self.module, "evaluate", None)
        return found if callable(found) else None

    @property
    def schema(self) -> type[BaseModel] | None:
        return getattr(self.module, "Hyperparameters", None)

    @property
    def description(self) -> str:
        return (self.module.__doc__ or "").strip().splitlines()[0] if self.module.__doc__ else ""

    def validate_hyperparameter(
        self, values: dict[str, Any], *, field: str = "hyperparameter", partial: bool = False
    ) -> dict[str, Any]:
        """Check ``values`` against the plugin's schema; return them with defaults filled in.

        With ``partial`` only the given keys are checked (tuning mode checks the
        fixed values before the searched ones are known).
        """
        schema = self.schema
        if schema is None:
            return dict(values)
        try:
            if partial:
                unknown = sorted(set(values) - set(schema.model_fields))
                if unknown and schema.model_config.get("extra") == "forbid":
                    raise JobValidationError(
                        f"{field}: {unknown} are not hyperparameters of plugin {self.name!r}; "
                        f"it accepts {sorted(schema.model_fields)}"
                    )
                return dict(values)
            return schema.model_validate(values).model_dump()
        except ValidationError as error:
            lines = []
            for problem in error.errors(include_url=False):
                where = ".".join(str(p) for p in problem["loc"])
                message = problem["msg"].removeprefix("Value error, ")
                if problem["type"] == "extra_forbidden":
                    message = (
                        f"not a hyperparameter of plugin {self.name!r}; "
                        f"it accepts {sorted(schema.model_fields)}"
                    )
                lines.append(f"{field}.{where}: {message}")
            raise JobValidationError(lines) from None

    def validate_search(
        self, fixed: dict[str, Any], entries: Sequence[Distribution]
    ) -> dict[str, Any]:
        """Tuning mode: check the fixed values and every searched bound against the schema.

        Each entry's extreme values (``min`` and ``max``, every option, a normal's
        mean) are tried one at a time, the other entries at their first value, so
        a range the plugin would reject fails here rather than in every trial.
        Returns ``fixed`` unchanged: defaults are filled in per trial.
        """
        searched = {entry.name: None for entry in entries}
        self.validate_hyperparameter(fixed, partial=True)
        self.validate_hyperparameter(searched, field="hyperparameters", partial=True)
        if self.schema is None:
            return dict(fixed)
        candidates = {entry.name: entry.extremes() for entry in entries}
        base = {name: values[0] for name, values in candidates.items()}
        for entry in entries:
            for value in candidates[entry.name]:
                try:
                    self.schema.model_validate({**fixed, **base, entry.name: value})
                except ValidationError as error:
                    raise JobValidationError(
                        [
                            _search_problem(problem, entry.name, value, fixed)
                            for problem in error.errors(include_url=False)
                        ]
                    ) from None
        return dict(fixed)


def _search_problem(problem: Any, name: str, value: Any, fixed: dict[str, Any]) -> str:
    message = problem["msg"].removeprefix("Value error, ")
    key = str(problem["loc"][0]) if problem["loc"] else name
    if key in fixed:
        return f"hyperparameter.{key}: {message}"
    if key == name:
        return f"hyperparameters ({name!r}): the plugin rejects {value!r}: {message}"
    return f"hyperparameters ({key!r}): {message}"


def _bundled() -> dict[str, str]:
    # Found by name, as any plugin is: the core never imports plugin code itself.
    plugins = importlib.import_module("unitrain.plugins")
    return {
        info.name: f"unitrain.plugins.{info.name}"
        for info in pkgutil.iter_modules(plugins.__path__)
        if info.ispkg and not info.name.startswith("_")
    }


def _installed() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


@functools.lru_cache(maxsize=1)
def available_plugins() -> dict[str, str]:
    """Plugin name -> module path, bundled first; an installed plugin may not shadow one.

    Found once per process (scanning installed distributions takes milliseconds,
    and a trial worker loads the plugin once per trial).
    """
    found = _installed()
    found.update(_bundled())
    return dict(sorted(found.items()))


def load_plugin(name: str | None = None) -> Plugin:
    """Import a discovered plugin by name and check it has a ``train`` function."""
    name = name or DEFAULT_PLUGIN
    known = available_plugins()
    if name not in known:
        raise NotFoundError(
            f"plugin: {name!r} is not an installed plugin; available: {', '.join(known) or 'none'}"
        )
    target = known[name]
    # "package.module" or "package.module:object" (an object with train/tune attributes)
    module_name, _, attribute = target.partition(":")
    try:
        loaded: Any = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            loaded = getattr(loaded, part)
    except Exception as error:
        raise UnitrainError(f"plugin {name!r} failed to import: {error}") from error
    if not callable(getattr(loaded, "train", None)):
        raise UnitrainError(f"plugin {name!r} ({target}) has no train() function")
    return Plugin(name=name, module=loaded)
