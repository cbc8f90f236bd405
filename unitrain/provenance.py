"""What a model was made with, so that it can be made again: the code and the data.

A job records on its MLflow run the SHA-256 of its dataset's content, its
plugin's version and the versions of the libraries its numbers depend on
(:func:`provenance_tags`); with the version's own tags (hyperparameters, the
seed among them, trial, checkpoint) that is what ``unitrain replay`` re-runs.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata

from unitrain.plugin_loader import ENTRY_POINT_GROUP, load_plugin
from unitrain.stores.mlflow_store import TAG

__all__ = ["LIBRARIES", "library_versions", "plugin_version", "provenance_tags"]

#: the distributions whose versions can change a model's numbers
LIBRARIES = (
    "unitrain",
    "numpy",
    "torch",
    "scikit-learn",
    "ray",
    "mlflow",
    "optuna",
    "hyperopt",
    "bayesian-optimization",
)


def library_versions() -> dict[str, str]:
    """Distribution -> installed version (``python`` too); missing ones left out."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        found = _version(name)
        if found:
            versions[name] = found
    return versions


def plugin_version(name: str) -> str:
    """The plugin's ``__version__``, else its distribution's version ("" if unknown).

    A bundled plugin is unitrain's; an installed one is its entry point's
    distribution's (looked up by name: scanning every distribution's files
    would take a second).
    """
    module = load_plugin(name).module
    given = getattr(module, "__version__", None)
    if given:
        return str(given)
    module_name = str(getattr(module, "__name__", type(module).__module__))
    if module_name.startswith("unitrain."):
        return _version("unitrain")
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name and point.dist is not None:
            return str(point.dist.version)
    return ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def provenance_tags(plugin: str, dataset_sha256: str) -> dict[str, str]:
    """The tags of a job's run that say what its models were made with."""
    return {
        TAG.DATASET_SHA256: dataset_sha256,
        TAG.PLUGIN_VERSION: plugin_version(plugin),
        TAG.LIBRARIES: json.dumps(library_versions(), sort_keys=True),
    }
