"""Carrying each trial's records to MLflow, and publishing its model, from the search's driver.

Trials write into their own folders (``unitrain.run_sinks.FolderSink``); a
thread of the driver turns each trial into an MLflow child run of the job's
run while the search goes on: for a trial that runs longer than a couple of
seconds the run appears while it runs and its metrics follow it; a short one
is written once, when it ends, whole, by the store's writer
(``unitrain.stores.writers``; on SQLite, run and model version in one
transaction, shared by the short trials that end within ``GATHER_S`` of each
other). When a trial ends its run gets its final metrics, parameters,
artifacts and status, and its model is published (``unitrain.stores.publisher``,
which decides whether that happens now or at the end). Every write is
idempotent (runs are found again by trial, models by job run and trial), so a
resumed job records nothing twice.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitrain.job.plan import TuningPlan
from unitrain.job.study import as_params
from unitrain.run_sinks import read_metrics
from unitrain.stores.mlflow_store import TAG, new_request_key
from unitrain.stores.publisher import ModelPublisher, Publication
from unitrain.stores.runs import RunStore, run_tags
from unitrain.stores.writes import FinishedRun
from unitrain.tune.results import TrialOutcome, TrialResult

__all__ = ["TrialRecorder"]

log = logging.getLogger(__name__)

#: a trial that has run this long gets its MLflow run while it runs
LIVE_AFTER_S = 2.0
#: metrics of a running trial are sent at most this often
LIVE_EVERY_S = 2.0
#: trials that end this close to each other are written together (waiting as long for more)
GATHER_S = 0.5
MAX_GATHERED = 500


@dataclass
class _Trial:
    run_id: str = ""
    #: the key of a run written at once (kept: a retry writes the same run)
    request: str = ""
    #: whether a write of that run was attempted (it may have taken effect)
    attempted: bool = False
    offset: int = 0
    params_sent: bool = False
    last_sent: float = 0.0
    ended: bool = False
    status: str = ""
    #: a run of an earlier attempt that ended and goes on (RUNNING again when it does)
    reopen: bool = False


@dataclass(frozen=True)
class _AtOnce:
    """A trial's run, built and waiting to be written with the others that ended."""

    outcome: TrialOutcome
    state: _Trial
    run: FinishedRun
    #: where the trial's metrics file is read from once the run is written
    offset: int


@dataclass
class TrialRecorder:
    """A queue of trial events and the thread that records them."""

    plan: TuningPlan
    trials_root: Path
    #: the job's MLflow run, parent of the trials' runs
    job_run: str
    #: whether ``job_run`` is an interrupted run going on (else it is new: nothing to find)
    resumed: bool = False
    run_ids: dict[str, str] = field(default_factory=dict)
    registered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._last_end: float | None = None  # when the recorder last saw a trial end
        self._trials: dict[str, _Trial] = {}
        self._thread = threading.Thread(target=self._run, name="trial-recorder", daemon=True)
        self._thread.start()

    # -- events (from Ray Tune's loop: they only queue) ------------------------------------

    def progressed(self, trial_id: str) -> None:
        self._queue.put(("progress", trial_id))

    def ended(self, outcome: TrialOutcome) -> None:
        self._queue.put(("end", outcome))

    def finish(self) -> None:
        """Wait until everything queued is recorded."""
        self._queue.put(None)
        self._thread.join()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self.runs = RunStore()
        # A new job run has published nothing yet: nothing to look up.
        self.publisher = ModelPublisher(
            self.plan, self.job_run, runs=self.runs, resumed=self.resumed
        )
        if self.resumed:
            self._runs_of_earlier_attempts()
        stop = False
        while not stop:
            events, stop = self._gather()
            self._record(events)

    def _gather(self) -> tuple[list[tuple[str, Any]], bool]:
        """The next event and those queued behind it; and whether to stop.

        While trials end within GATHER_S of each other, it also waits that long
        for more, so that they are written together; a trial that ends alone
        (a long one, the only one) is written at once.
        """
        first = self._queue.get()
        if first is None:
            return [], True
        events = [first]
        now = time.monotonic()
        busy = self._last_end is not None and now - self._last_end < GATHER_S
        deadline = now + (GATHER_S if busy else 0.0)
        while len(events) < MAX_GATHERED:
            try:
                event = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if event is None:
                return events, True
            events.append(event)
        if any(kind == "end" for kind, _ in events):
            self._last_end = time.monotonic()
        return events, False

    def _record(self, events: list[tuple[str, Any]]) -> None:
        """Record the events in order; the short trials that ended, in one write."""
        together: dict[str, _AtOnce] = {}
        for kind, payload in events:
            trial_id = payload if isinstance(payload, str) else payload.trial_id
            if trial_id in together:  # its run is not written yet: write it first
                self._write_together(list(together.values()))
                together.clear()
            try:
                if kind == "progress":
                    self._progress(payload)
                else:
                    pending = self._end(payload)
                    if pending is not None:
                        together[trial_id] = pending
            except Exception as error:  # noqa: BLE001 (the upload step tries again)
                self._failed(trial_id, error)
        self._write_together(list(together.values()))

    def _failed(self, trial_id: str, error: Exception) -> None:
        self.failed[trial_id] = str(error)
        log.warning("trial %s: could not record it in MLflow yet: %s", trial_id, error)

    def _runs_of_earlier_attempts(self) -> None:
        """The runs a resumed job recorded before it was interrupted, by trial."""
        for run in self.runs.children(self.job_run):
            trial_id = run.data.tags.get(TAG.TRIAL, "")
            if not trial_id:
                continue
            self.run_ids[trial_id] = run.info.run_id
            # A trial that finished is done; any other continues in its run.
            finished = run.info.status == "FINISHED"
            self._trials[trial_id] = _Trial(
                run_id=run.info.run_id,
                ended=finished,
                status=run.info.status,
                reopen=not finished,
                params_sent=True,  # (MLflow keeps a run's first values of its parameters)
            )

    def _progress(self, trial_id: str) -> None:
        state = self._trials.setdefault(trial_id, _Trial())
        now = time.time()
        if state.ended or now - state.last_sent < LIVE_EVERY_S:
            return
        own = TrialResult.load(self.trials_root / trial_id)
        if own is None or own.status != "RUNNING" or now - own.started_at < LIVE_AFTER_S:
            return  # a short trial is written once, when it ends
        self._ensure_run(trial_id, own, state)
        self._send(trial_id, own, state)

    def _end(self, outcome: TrialOutcome) -> _AtOnce | None:
        """Record a trial's end; a short one is returned, to be written with others."""
        trial_id = outcome.trial_id
        state = self._trials.setdefault(trial_id, _Trial())
        if state.ended:
            if outcome.status == "ERROR" and state.status == "FINISHED":
                # The driver failed a trial that ran to its end (its metric is missing).
                self.runs.end_run(state.run_id, "FAILED")
                state.status = "FAILED"
            if self._publishes(outcome) and trial_id not in self.registered:
                self._publish(outcome, state.run_id)
            return None
        own = TrialResult.load(self.trials_root / trial_id)
        if own is None:
            return None  # it never started: nothing to record
        if not state.run_id:
            return self._at_once(outcome, own, state)
        self._send(trial_id, own, state, final=outcome.metrics)
        lineage = _lineage_tags(own)
        if lineage:
            self.runs.log(state.run_id, tags=lineage)
        artifacts = self.trials_root / trial_id / "record" / "artifacts"
        if artifacts.is_dir():
            self.runs.log_artifacts(state.run_id, artifacts)
        status = _run_status(outcome)
        end_ms = int((own.ended_at or time.time()) * 1000)
        self.runs.end_run(state.run_id, status, end_time_ms=end_ms)
        state.ended, state.status = True, status
        if self._publishes(outcome):
            self._publish(outcome, state.run_id)
        return None

    def _at_once(self, outcome: TrialOutcome, own: TrialResult, state: _Trial) -> _AtOnce:
        """A trial that ended before its run was made: its run and model, to write at once."""
        trial_id = outcome.trial_id
        if not state.request:
            state.request = new_request_key()
        uploads: list[tuple[str, str | None]] = []
        artifacts = self.trials_root / trial_id / "record" / "artifacts"
        if artifacts.is_dir():
            uploads.append((str(artifacts), None))
        model = None
        if self._publishes(outcome) and trial_id not in self.publisher.known:
            uploads.append((outcome.model_dir, "model"))
            model = self.publisher.version(
                trial_id=trial_id,
                hyperparameters=outcome.hyperparameters,
                metrics=outcome.metrics,
                tags=outcome.model_tags,
            )
        now = time.time()
        metrics, offset = self._metrics(trial_id, state, outcome.metrics)
        run = FinishedRun(
            request=state.request,
            experiment_id=self.runs.experiment_id(),
            name=f"{self.plan.job}-{trial_id}",
            status=_run_status(outcome),
            start_ms=int((own.started_at or now) * 1000),
            end_ms=int((own.ended_at or now) * 1000),
            tags=run_tags(
                self.plan,
                {TAG.TRIAL: trial_id, TAG.NODE: own.node, **_lineage_tags(own)},
                self.job_run,
            ),
            params=as_params(own.hyperparameters),
            metrics=metrics,
            uploads=tuple(uploads),
            model=model,
        )
        return _AtOnce(outcome, state, run, offset)

    def _write_together(self, pending: list[_AtOnce]) -> None:
        """Write the runs (and models) of trials that ended, in one transaction."""
        if not pending:
            return
        again = any(item.state.attempted for item in pending)
        for item in pending:
            item.state.attempted = True
        try:
            written = self.runs.write_finished([item.run for item in pending], again=again)
        except Exception as error:  # noqa: BLE001 (the upload step tries again)
            if len(pending) == 1:
                self._failed(pending[0].outcome.trial_id, error)
                return
            for item in pending:  # one at a time: one trial's trouble is not the others'
                self._write_together([item])
            return
        for item, done in zip(pending, written, strict=True):
            trial_id, state = item.outcome.trial_id, item.state
            state.run_id, state.params_sent, state.offset = done.run_id, True, item.offset
            state.ended, state.status = True, item.run.status
            self.run_ids[trial_id] = done.run_id
            if done.model_id is not None:
                self.publisher.remember(trial_id, done.model_id)
            if trial_id in self.publisher.known and self._publishes(item.outcome):
                self.registered[trial_id] = self.publisher.known[trial_id]

    def _ensure_run(self, trial_id: str, own: TrialResult, state: _Trial) -> None:
        if state.run_id:
            return
        state.run_id = self.runs.start_run(
            self.plan,
            run_name=f"{self.plan.job}-{trial_id}",
            parent_run_id=self.job_run,
            tags={TAG.TRIAL: trial_id, TAG.NODE: own.node},
            start_time_ms=int((own.started_at or time.time()) * 1000),
        )
        self.run_ids[trial_id] = state.run_id

    def _send(
        self,
        trial_id: str,
        own: TrialResult,
        state: _Trial,
        final: dict[str, float] | None = None,
    ) -> None:
        if state.reopen:  # an attempt that was stopped goes on
            self.runs.reopen_run(state.run_id)
            state.reopen = False
        lines, offset = self._metrics(trial_id, state, final)
        params = None if state.params_sent else as_params(own.hyperparameters)
        self.runs.log(state.run_id, metrics=lines, params=params)
        state.offset, state.params_sent, state.last_sent = offset, True, time.time()

    def _metrics(
        self, trial_id: str, state: _Trial, final: dict[str, float] | None
    ) -> tuple[list[tuple[str, float, int, int]], int]:
        """What the trial logged since the last send, its final metrics not logged, and the
        offset to read from once they are sent (a failed send reads them again)."""
        lines, offset = read_metrics(self.trials_root / trial_id / "record", state.offset)
        metrics = list(lines)
        if final:
            logged = {line[0] for line in lines}
            now = int(time.time() * 1000)
            step = max((line[3] for line in lines), default=0)
            metrics += [(k, v, now, step) for k, v in final.items() if k not in logged]
        return metrics, offset

    def _publishes(self, outcome: TrialOutcome) -> bool:
        return outcome.has_model and self.publisher.as_trials_end

    def _publish(self, outcome: TrialOutcome, run_id: str) -> None:
        self.registered[outcome.trial_id] = self.publisher.publish(
            Publication(
                run_id=run_id,
                model_dir=outcome.model_dir,
                metrics=outcome.metrics,
                hyperparameters=outcome.hyperparameters,
                trial_id=outcome.trial_id,
            )
        )


def _run_status(outcome: TrialOutcome) -> str:
    if outcome.status == "ERROR":
        return "FAILED"
    return {"FINISHED": "FINISHED", "KILLED": "KILLED"}.get(outcome.ended, "FAILED")


def _lineage_tags(own: TrialResult) -> dict[str, str]:
    """What a trial continued from (PBT's donors, its own retries), as a tag of its run."""
    if not own.lineage:
        return {}
    return {"unitrain.lineage": json.dumps(own.lineage, sort_keys=True, default=str)}
