"""Checkpoints travel with reports: what a plugin has saved in ``run.checkpoint_output`` when it
calls ``run.report(...)`` is that report's checkpoint.

Nothing else is asked of a plugin. In a search, each report whose folder
changed hands the folder to Ray Tune as the report's checkpoint (see
``unitrain.tune.trial``), so Ray's schedulers, PBT and restores see it. In a
training job, :class:`TrainingCheckpoints` keeps a copy of the folder as it
stood at the latest such report, so a training job killed mid-way continues
from there when it is run again. A report whose folder did not change since
the last checkpoint copies nothing (:class:`FolderWatch`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unitrain.job.records import Checkpoint
from unitrain.metrics import finite_metrics

__all__ = ["FolderWatch", "TrainingCheckpoints", "fingerprint"]

#: files in a checkpoint that are unitrain's or Ray's, not the plugin's
_OWN_FILES = frozenset({".metadata.json", ".unitrain-checkpoint.json"})


def fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file of ``folder`` (relative path, size, modification time): equal when nothing
    in it changed."""
    found = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name in _OWN_FILES:
                continue
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile
                continue
            found.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


class FolderWatch:
    """Tells whether a folder holds something new since it was last looked at."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._last: tuple[tuple[str, int, int], ...] = ()

    def changed(self) -> bool:
        """True when the folder has files and they differ from the last time this said so."""
        now = fingerprint(self.folder) if self.folder.is_dir() else ()
        if not now or now == self._last:
            return False
        self._last = now
        return True


class TrainingCheckpoints:
    """A training job's latest checkpoint: a copy of its model folder, replaced as it reports.

    The copy is made beside the current one and swapped in by renaming, so a
    crash at any moment leaves the last complete checkpoint (``checkpoint``, or
    ``checkpoint.old`` while a swap was under way).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.current = folder / "checkpoint"
        self._previous = folder / "checkpoint.old"

    def save(self, output: Path, iteration: int, metrics: dict[str, Any]) -> None:
        """Keep ``output`` as it is now, as the checkpoint of report number ``iteration``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / f"checkpoint.new-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(output, staging)
        about = {"iteration": iteration, "metrics": metrics}
        (staging / ".unitrain-checkpoint.json").write_text(json.dumps(about))
        shutil.rmtree(self._previous, ignore_errors=True)
        if self.current.exists():
            self.current.rename(self._previous)
        staging.rename(self.current)
        shutil.rmtree(self._previous, ignore_errors=True)

    def latest(self) -> Checkpoint | None:
        """The last complete checkpoint, or None."""
        for folder in (self.current, self._previous):
            about = folder / ".unitrain-checkpoint.json"
            try:
                iteration = int(json.loads(about.read_text())["iteration"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            return Checkpoint(model_id=None, path=str(folder), iteration=iteration)
        return None

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def reporter(self, output: Path, *, after: int = 0) -> Callable[[dict[str, Any]], None]:
        """``run.report`` of a training job: each report whose folder changed is kept as the
        checkpoint. ``after``: the reports behind the checkpoint the run started from."""
        watch = FolderWatch(output)
        count = [after]

        def report(result: dict[str, Any]) -> None:
            count[0] += 1
            if watch.changed():
                metrics = finite_metrics(result, skip=("epoch", "step"))
                self.save(output, count[0], metrics)

        return report
