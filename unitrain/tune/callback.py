"""A Ray Tune callback that keeps the live trial table and the trials share of the bar.

Ray Tune calls callbacks on its scheduling loop, so nothing here waits on the
network: hooks only update the table in memory, and snapshots (table and
progress) are sent from one background thread, at most one per
``interval_s``, the newest state replacing any older one not yet sent. Jobs
with hundreds of short trials thus do not spend their time logging; the final
state is always published by :meth:`TrialsLoggingCallback.finish`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ray.tune import Callback

from unitrain.job.records import EarlierTrial
from unitrain.metrics import finite_metrics
from unitrain.reporting.progress import StepProgress
from unitrain.reporting.trial_table import MAX_METRIC_COLUMNS, TrialTable
from unitrain.tune.results import RAY_BOOKKEEPING
from unitrain.tune.trial import LINEAGE_KEY

__all__ = ["TrialsLoggingCallback"]


class TrialsLoggingCallback(Callback):
    """Keeps the table of a running search and publishes snapshots of it.

    Args:
        clock: a monotonic clock (injectable for tests); the first snapshot is
            sent at once whatever the clock's origin, later ones at most one per
            ``interval_s``.
    """

    def __init__(
        self,
        *,
        job: str,
        metric: str,
        mode: str = "max",
        metrics: Sequence[str] = (),
        hyperparameters: list[str],
        total_trials: int,
        progress: StepProgress | None,
        interval_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        on_start: Callable[[Any], None] | None = None,
        on_result: Callable[[Any], None] | None = None,
        on_end: Callable[[Any, bool], None] | None = None,
        config_of: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ) -> None:
        self.job = job
        #: a trial's configuration as its plugin gets it (conditional entries only where held)
        self.config_of = config_of
        self.metric = metric
        self.mode = mode
        self.hyperparameters = hyperparameters
        self.total_trials = max(total_trials, 1)
        self.progress = progress
        self.interval_s = interval_s
        self.trials: dict[str, dict[str, Any]] = {}
        # the ranking metric first, then the other objectives
        self.metric_columns: list[str] = list(dict.fromkeys([metric, *metrics]))[
            :MAX_METRIC_COLUMNS
        ]
        self.metric_names: set[str] = set()
        self.finished = 0
        #: how many of Ray's trials ``on_step_end`` has looked at
        self._seen = 0
        #: whether a trial continued from another's state (the table then says which)
        self.cloned = False
        self._clock = clock
        self._on_start = on_start
        self._on_result = on_result
        self._on_end = on_end
        self._last: float | None = None  # no snapshot sent yet
        self._sender: ThreadPoolExecutor | None = None
        self._inflight: Future[None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune saves its callbacks with the experiment state; a thread pool
        # does not pickle, and a restored callback starts its own.
        state = dict(self.__dict__)
        state["_sender"] = state["_inflight"] = None
        state["_on_start"] = state["_on_result"] = state["_on_end"] = None
        return state

    # -- Ray Tune hooks ----------------------------------------------------

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "RUNNING")
        row = self.trials[trial.trial_id]
        row["attempts"] = int(row.get("attempts", 0)) + 1  # a retried trial starts again
        if self._on_start is not None:
            self._on_start(trial)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._update(trial, "RUNNING", result)
        if self._on_result is not None:
            self._on_result(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "TERMINATED", trial.last_result)
        if self._on_end is not None:
            self._on_end(trial, False)
        self._one_more_finished()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, "ERROR", trial.last_result)
        if self._on_end is not None:
            self._on_end(trial, True)
        self._one_more_finished()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        # Ray's list of trials only grows: look at the ones added since the last step,
        # not at every trial of the search at every step.
        for trial in trials[self._seen :]:
            if trial.trial_id not in self.trials and trial.status == "PENDING":
                self._update(trial, "PENDING")
        self._seen = len(trials)
        self._publish()

    # -- table -------------------------------------------------------------

    def _update(self, trial: Any, status: str, result: dict | None = None) -> None:
        row = self.trials.setdefault(trial.trial_id, {})
        row["status"] = status
        config = self.config_of(dict(trial.config or {}))
        for name in self.hyperparameters:
            if name in config:
                row[name] = config[name]
        for key, value in finite_metrics(result or {}, skip=RAY_BOOKKEEPING).items():
            row[key] = value
            self.metric_names.add(key)
            if key not in self.metric_columns and len(self.metric_columns) < MAX_METRIC_COLUMNS:
                self.metric_columns.append(key)
        cloned = (result or {}).get(LINEAGE_KEY)
        if isinstance(cloned, str):  # PBT restarted it from another trial's state
            row["cloned"] = f"{row['cloned']}; {cloned}" if row.get("cloned") else cloned
            self.cloned = True

    def add_earlier(self, trials: Sequence[EarlierTrial]) -> None:
        """Rows for the trials of the study this search extends, first, as ``EARLIER``."""
        for trial in trials:
            row: dict[str, Any] = {"status": "EARLIER"}
            row.update((n, trial.config[n]) for n in self.hyperparameters if n in trial.config)
            for key, value in finite_metrics(trial.metrics, skip=RAY_BOOKKEEPING).items():
                if key in self.metric_columns or len(self.metric_columns) < MAX_METRIC_COLUMNS:
                    row[key] = value
                    if key not in self.metric_columns:
                        self.metric_columns.append(key)
            self.trials[trial.key] = row

    def _one_more_finished(self) -> None:
        self.finished += 1
        self._publish()

    def table(self, best_trial: str = "") -> TrialTable:
        return TrialTable(
            trials={k: dict(v) for k, v in self.trials.items()},
            base=["status", "attempts", *(["cloned"] if self.cloned else [])],
            hyperparameters=list(self.hyperparameters),
            metrics=list(self.metric_columns),
            best_trial=best_trial,
            mode=self.mode,
        )

    def reported(self, trial_id: str) -> dict[str, float]:
        """The latest value of every metric a trial reported to Ray, however it reported it."""
        row = self.trials.get(trial_id, {})
        return {k: v for k, v in row.items() if k in self.metric_names and isinstance(v, float)}

    def _publish(self) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            return
        if self._inflight is not None and not self._inflight.done():
            return  # the next due snapshot will carry this state too
        self._last = now
        table, finished = self.table(), self.finished
        # Prefect's run context lives in context variables: carry it to the thread.
        context = contextvars.copy_context()
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trial-table")
        self._inflight = self._sender.submit(context.run, self._send, table, finished)

    def _send(self, table: TrialTable, finished: int) -> None:
        table.publish(self.job)
        if self.progress is not None:
            self.progress.update(finished, self.total_trials)

    def finish(self) -> TrialTable:
        """Wait for the last snapshot and return the final table (log_trials publishes it)."""
        if self._inflight is not None:
            self._inflight.result()
        if self._sender is not None:
            self._sender.shutdown(wait=True)
        if self.progress is not None:
            self.progress.update(self.finished, self.total_trials)
        return self.table()
