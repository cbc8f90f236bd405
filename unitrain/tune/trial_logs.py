"""The trials' log lines, carried to the job's log by the search's driver.

Each trial writes what its plugin logs into its folder
(``unitrain.reporting.plugin_log``); this Ray Tune callback, on the driver's
loop, reads the new lines of every running trial about once a second, and
all of a trial's remaining lines when it ends, and logs them in order with
the search step's logger: Prefect's run logger, so they reach the flow run's
log in Prefect, the job's ``run.log`` and, with ``-v``, the terminal. Each
line already carries its trial's ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from unitrain.reporting.logs import run_logger
from unitrain.reporting.plugin_log import read_lines

__all__ = ["TrialLogForwarder"]

_LEVELS = logging.getLevelNamesMapping()


class TrialLogForwarder(Callback):
    """Logs the trials' lines as they write them."""

    def __init__(
        self,
        trials_root: str | Path,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trials_root = str(trials_root)  # (a path, not a function: the callback is saved)
        self.interval_s = interval_s
        self._clock = clock
        self._offsets: dict[str, int] = {}
        self._running: set[str] = set()
        self._last = 0.0
        self._logger: Any = run_logger()  # the search step's, taken in its context

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_logger"] = None  # Ray Tune saves its callbacks; a restored one takes its own
        return state

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._running.add(trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = self._clock()
        if now - self._last < self.interval_s:
            return
        self._last = now
        for trial_id in sorted(self._running):
            self.forward(trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial.trial_id)

    def _ended(self, trial_id: str) -> None:
        self.forward(trial_id)
        self._running.discard(trial_id)

    def forward(self, trial_id: str) -> int:
        """Log the trial's lines written since the last call; how many there were."""
        lines, self._offsets[trial_id] = read_lines(
            Path(self.trials_root) / trial_id / "record", self._offsets.get(trial_id, 0)
        )
        if lines and self._logger is None:
            self._logger = run_logger()
        for line in lines:
            level = _LEVELS.get(str(line.get("level", "INFO")), logging.INFO)
            self._logger.log(level, "%s", line.get("text", ""))
        return len(lines)
