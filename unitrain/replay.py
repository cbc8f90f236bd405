"""Replaying a model: the training (or the trial) that made it, run again from its record.

What a model's version and its job's run recorded (the plugin and its
version, the configuration with its seed, the dataset and the SHA-256 of its
content, the checkpoint it started from, the libraries' versions) becomes a
training job of its own (:func:`replay_job`), refused if the dataset's
content is no longer the same (:func:`check_dataset`); its metrics are then
set beside the recorded ones (:func:`compare_metrics`). ``unitrain replay``
runs it.

A trial is replayed as a training job with the trial's configuration: a
trial that a scheduler stopped early, or that PBT moved onto another trial's
checkpoint, ran something else, and its replay says which metrics differ.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from unitrain.errors import UnitrainError
from unitrain.job.records import ModelRecord
from unitrain.provenance import library_versions, plugin_version
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.mlflow_store import TAG
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore

__all__ = ["DEFAULT_TOLERANCE", "Replay", "ReplayRefused", "Verdict", "compare_metrics"]

#: relative: |replayed - recorded| <= tolerance * max(1, |recorded|)
DEFAULT_TOLERANCE = 1e-6


class ReplayRefused(UnitrainError):
    """The model cannot be replayed as it was made (its record says why)."""


@dataclass(frozen=True)
class Replay:
    """A model's record, as a job that makes it again."""

    record: ModelRecord
    dataset_sha256: str
    checkpoint: int | None
    plugin_version: str
    libraries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, model_id: int, registry: ModelRegistry | None = None) -> Replay:
        """What the registry recorded of ``model_id``; refused if it lacks what replay needs."""
        registry = registry or ModelRegistry()
        record = registry.get(model_id)
        tags: dict[str, str] = {}
        if record.job_run:
            tags = dict(RunStore(registry.store).get(record.job_run).data.tags)
        sha = tags.get(TAG.DATASET_SHA256, "")
        if not sha:
            raise ReplayRefused(
                f"model {model_id}: its job ({record.job!r}) recorded no dataset SHA-256; "
                "models made from now on record what replay needs"
            )
        checkpoint = tags.get(TAG.CHECKPOINT, "")
        return cls(
            record=record,
            dataset_sha256=sha,
            checkpoint=int(checkpoint) if checkpoint.isdigit() else None,
            plugin_version=tags.get(TAG.PLUGIN_VERSION, ""),
            libraries=json.loads(tags.get(TAG.LIBRARIES, "{}")),
        )

    def job(self, name: str) -> dict[str, Any]:
        """The training job that makes the model again, under the new ``name``."""
        record = self.record
        params: dict[str, Any] = {
            "name": name,
            "dataset": int(record.dataset) if record.dataset.isdigit() else record.dataset,
            "hyperparameter": record.hyperparameters,
        }
        if self.checkpoint is not None:
            params["checkpoint"] = self.checkpoint
        return {"action": "train", "plugin": record.plugin, "params": params}

    def check_dataset(self, catalog: DatasetCatalog | None = None) -> None:
        """Refuse, naming both hashes, if the dataset's content is not what the model saw."""
        catalog = catalog or DatasetCatalog()
        dataset = self.record.dataset
        entry = catalog.get(int(dataset) if dataset.isdigit() else dataset)
        try:
            now = catalog.prepare(entry).sha256
        except UnitrainError as error:
            raise ReplayRefused(
                f"dataset {entry.id} ({entry.name}) cannot be had as model "
                f"{self.record.model_id} saw it (sha256 {self.dataset_sha256}): {error}"
            ) from None
        if now != self.dataset_sha256:
            raise ReplayRefused(
                f"dataset {entry.id} ({entry.name}) changed: model {self.record.model_id} was "
                f"trained on content with sha256 {self.dataset_sha256}, it now has sha256 {now}"
            )

    def version_changes(self) -> list[str]:
        """Each library (and the plugin) whose version differs from the recorded one."""
        now = library_versions()
        changes = [
            f"{name} {was} -> {now.get(name, 'not installed')}"
            for name, was in sorted(self.libraries.items())
            if now.get(name) != was
        ]
        current = plugin_version(self.record.plugin)
        if self.plugin_version and current != self.plugin_version:
            changes.append(f"plugin {self.record.plugin} {self.plugin_version} -> {current}")
        return changes


@dataclass(frozen=True)
class Verdict:
    """The recorded and the replayed metrics, side by side."""

    equal: bool
    #: (metric, recorded, replayed, whether they agree)
    rows: list[tuple[str, float | None, float | None, bool]]
    tolerance: float

    @property
    def different(self) -> list[str]:
        return [name for name, _, _, same in self.rows if not same]

    def lines(self, recorded_id: int, replayed_id: int) -> list[str]:
        """The table and the verdict, as ``unitrain replay`` prints them."""
        width = max([len("metric"), *(len(name) for name, *_ in self.rows)])
        out = [f"{'metric':<{width}}  {'model ' + str(recorded_id):>14}  "
               f"{'replay ' + str(replayed_id):>14}"]  # fmt: skip
        for name, was, now, same in self.rows:
            mark = "" if same else "  differs"
            out.append(f"{name:<{width}}  {_shown(was):>14}  {_shown(now):>14}{mark}")
        rule = f"within a relative tolerance of {self.tolerance:g}"
        if self.equal:
            out.append(f"verdict: equal, every metric {rule}")
        else:
            out.append(f"verdict: different: {', '.join(self.different)} (not {rule})")
        return out


def compare_metrics(
    recorded: dict[str, float], replayed: dict[str, float], tolerance: float = DEFAULT_TOLERANCE
) -> Verdict:
    """Whether every recorded metric came back within ``tolerance`` (relative)."""
    rows = []
    for name in sorted(set(recorded) | set(replayed)):
        was, now = recorded.get(name), replayed.get(name)
        rows.append((name, was, now, _agree(was, now, tolerance)))
    return Verdict(all(same for *_, same in rows), rows, tolerance)


def _agree(was: float | None, now: float | None, tolerance: float) -> bool:
    if was is None or now is None:
        return False
    if math.isnan(was) or math.isnan(now):
        return math.isnan(was) and math.isnan(now)
    return abs(now - was) <= tolerance * max(1.0, abs(was))


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.8g}"
