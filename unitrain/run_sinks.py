"""Where a :class:`~unitrain.plugin_api.TrainRun` sends what a plugin records.

A training job's run writes straight to its MLflow run (:class:`MlflowSink`):
metrics, parameters and artifacts appear there as the plugin logs them. A
trial writes into its own folder instead (:class:`FolderSink`): metric lines
appended to ``metrics.jsonl``, parameters in ``params.json``, files under
``artifacts/``. The driver of the search reads those folders and writes the
trials' MLflow runs (``unitrain.tune.recorder``), so a trial never waits on
the store, never imports MLflow, and a store outage cannot fail it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from unitrain.stores.runs import RunStore

__all__ = ["FolderSink", "MlflowSink", "NoSink", "RunSink", "read_metrics"]

# Metrics are sent in batches: one write per batch instead of one per value.
FLUSH_EVERY = 200
FLUSH_INTERVAL_S = 2.0


class RunSink(Protocol):
    def metric(self, key: str, value: float, timestamp_ms: int, step: int) -> None: ...

    def params(self, values: dict[str, str]) -> None: ...

    def artifact(self, path: str, data: bytes) -> None: ...

    def flush(self) -> None: ...


class NoSink:
    """Records nothing (a run used outside a job, as in a plugin's own tests)."""

    def metric(self, key: str, value: float, timestamp_ms: int, step: int) -> None:
        pass

    def params(self, values: dict[str, str]) -> None:
        pass

    def artifact(self, path: str, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


class _Buffered:
    def __init__(self) -> None:
        self._metrics: list[tuple[str, float, int, int]] = []
        self._params: dict[str, str] = {}
        self._last_flush = time.monotonic()

    def metric(self, key: str, value: float, timestamp_ms: int, step: int) -> None:
        self._metrics.append((key, value, timestamp_ms, step))
        if (
            len(self._metrics) >= FLUSH_EVERY
            or time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S
        ):
            self.flush()

    def params(self, values: dict[str, str]) -> None:
        self._params.update(values)  # sent with the next batch of metrics

    def flush(self) -> None:
        if self._metrics or self._params:
            self._write(self._metrics, self._params)
        self._metrics, self._params = [], {}
        self._last_flush = time.monotonic()

    def _write(self, metrics: list[tuple[str, float, int, int]], params: dict[str, str]) -> None:
        raise NotImplementedError


class MlflowSink(_Buffered):
    """Writes to an MLflow run as the plugin logs (training mode)."""

    def __init__(self, run_id: str, runs: RunStore) -> None:
        super().__init__()
        self.run_id = run_id
        self._runs = runs

    def _write(self, metrics: list[tuple[str, float, int, int]], params: dict[str, str]) -> None:
        self._runs.log(self.run_id, metrics=metrics, params=params)

    def artifact(self, path: str, data: bytes) -> None:
        parent = str(Path(path).parent)
        folder = None if parent == "." else parent
        self._runs.log_files(self.run_id, {Path(path).name: data}, folder)


class FolderSink(_Buffered):
    """Writes into a trial's folder, for the search's driver to carry to MLflow."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, metrics: list[tuple[str, float, int, int]], params: dict[str, str]) -> None:
        if params:
            known = _read_json(self.folder / "params.json")
            _write_json(self.folder / "params.json", {**known, **params})
        if metrics:
            lines = "".join(json.dumps(m) + "\n" for m in metrics)
            with open(self.folder / "metrics.jsonl", "a") as handle:
                handle.write(lines)

    def artifact(self, path: str, data: bytes) -> None:
        target = self.folder / "artifacts" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_metrics(
    folder: str | Path, offset: int = 0
) -> tuple[list[tuple[str, float, int, int]], int]:
    """Complete metric lines a :class:`FolderSink` wrote after byte ``offset``; the new offset."""
    path = Path(folder) / "metrics.jsonl"
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
    metrics = [tuple(json.loads(line)) for line in complete.splitlines() if line.strip()]
    return metrics, offset + len(complete)  # type: ignore[return-value]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)
