"""A trial's log lines, on their way to the job's log.

Prefect's run logger does not work inside Ray's worker processes, where trials
run, so a trial writes its lines (``run.log_message``, and what the plugin's
own loggers say at INFO and above) into its folder as they come
(:class:`PluginLog`, one JSON object per line); the search's driver reads them
back (:func:`read_lines`) and logs them with the search step's logger, which
sends them to the flow run's log in Prefect, the job's ``run.log`` and, with
``-v``, the terminal. A trial that floods is rate-limited where it writes: the
lines over the limit are counted, and a line says how many were dropped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["LOG_FILE", "PluginLog", "PluginLogHandler", "read_lines"]

LOG_FILE = "log.jsonl"
#: lines a trial may write per second on average, and at once
RATE = 20.0
BURST = 200


class PluginLog:
    """Appends a run's lines to ``folder/log.jsonl``, at most ``rate`` a second on average."""

    def __init__(
        self,
        folder: str | Path,
        *,
        rate: float = RATE,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(folder) / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._then = clock()
        self.dropped = 0
        self._unsaid = 0  # dropped lines no line has mentioned yet

    def write(self, level: str, text: str) -> bool:
        """Write one line; False when the rate limit dropped it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._then) * self.rate)
        self._then = now
        if self._tokens < 1:
            self.dropped += 1
            self._unsaid += 1
            return False
        self._tokens -= 1
        lines = [(level, text)]
        if self._unsaid:
            lines.insert(0, ("WARNING", self._dropped_line()))
            self._unsaid = 0
        self._append(lines)
        return True

    def close(self) -> None:
        """Say how many lines were dropped since the last one written, if any."""
        if self._unsaid:
            self._append([("WARNING", self._dropped_line())])
            self._unsaid = 0

    def _dropped_line(self) -> str:
        return (
            f"{self._unsaid} log line(s) dropped: more than {self.rate:g} a second "
            f"({self.dropped} in all)"
        )

    def _append(self, lines: list[tuple[str, str]]) -> None:
        stamp = time.time()
        data = "".join(json.dumps({"t": stamp, "level": lv, "text": tx}) + "\n" for lv, tx in lines)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(data)


def read_lines(folder: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete lines written to ``folder`` after byte ``offset``, and the new offset."""
    try:
        with open(Path(folder) / LOG_FILE, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
    lines = []
    for raw in complete.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a torn line of a killed process
    return lines, offset + len(complete)


class PluginLogHandler(logging.Handler):
    """Sends a plugin's own log records (INFO and above) to ``emit_line(level, text)``."""

    def __init__(self, emit_line: Callable[[str, str], None]) -> None:
        super().__init__(level=logging.INFO)
        self._emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit_line(record.levelname, record.getMessage())
        except Exception:  # noqa: BLE001 (logging must never fail the plugin)
            self.handleError(record)
