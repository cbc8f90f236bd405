"""Carrying each trial's records to MLflow, and registering its model, from the search's driver.

Trials write into their own folders (``unitrain.run_sinks.FolderSink``); a
thread of the driver turns each trial into an MLflow child run of the job's
run while the search goes on: for a trial that runs longer than a couple of
seconds the run appears while it runs and its metrics follow it; a short one
is written once, when it ends, with its start and end times (in an SQLite
store, run and model version in one transaction: ``unitrain.stores.sql_writes``;
the short trials that end within ``GATHER_S`` of each other share it).
When a trial ends its run gets its final metrics, parameters, artifacts and
status, and its model is registered. Every write is idempotent (runs are found
again by trial, models by job run and trial), so a resumed job records
nothing twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitrain.job.plan import TuningPlan
from unitrain.run_sinks import read_metrics
from unitrain.tune.results import TrialOutcome, TrialResult

if TYPE_CHECKING:
    from unitrain.stores.sql_writes import FinishedRun

__all__ = ["TrialRecorder"]

log = logging.getLogger(__name__)

#: a trial that has run this long gets its MLflow run while it runs
LIVE_AFTER_S = 2.0
#: metrics of a running trial are sent at most this often
LIVE_EVERY_S = 2.0
_BATCH = 1000  # MLflow's limit of metrics per log_batch
#: trials that end this close to each other are written together (waiting as long for more)
GATHER_S = 0.5
MAX_GATHERED = 500


@dataclass
class _Trial:
    run_id: str = ""
    #: the ID a run written at once gets (kept, so a retry writes into the same folder)
    planned_run: tuple[str, str] | None = None
    offset: int = 0
    params_sent: bool = False
    last_sent: float = 0.0
    ended: bool = False
    status: str = ""


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
        from unitrain.stores.registry import ModelRegistry

        self.registry = ModelRegistry()
        self._models: dict[str, int] = {}
        if self.resumed:  # (two searches that take longer the more the store holds)
            self._runs_of_earlier_attempts()
            self._models = self.registry.registered_trials(self.plan.job, self.job_run)
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
        from unitrain.stores.registry import TAG

        runs = self.registry.client.search_runs(
            [self.registry.experiment_id()],
            filter_string=f"tags.`mlflow.parentRunId` = '{self.job_run}'",
            max_results=50_000,
        )
        for run in runs:
            trial_id = run.data.tags.get(TAG.TRIAL, "")
            if trial_id and run.info.status != "RUNNING":
                self.run_ids[trial_id] = run.info.run_id
                self._trials[trial_id] = _Trial(
                    run_id=run.info.run_id, ended=True, status=run.info.status
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
                self.registry.client.set_terminated(state.run_id, "FAILED")
                state.status = "FAILED"
            if self._registers(outcome) and trial_id not in self.registered:
                self._register(outcome, state.run_id)
            return None
        own = TrialResult.load(self.trials_root / trial_id)
        if own is None:
            return None  # it never started: nothing to record
        if not state.run_id and self.registry.writes_runs_at_once:
            return self._at_once(outcome, own, state)
        self._ensure_run(trial_id, own, state)
        self._send(trial_id, own, state, final=outcome.metrics)
        artifacts = self.trials_root / trial_id / "record" / "artifacts"
        if artifacts.is_dir():
            self.registry.log_artifacts(state.run_id, artifacts)
        status = _run_status(outcome)
        end_ms = int((own.ended_at or time.time()) * 1000)
        self.registry.client.set_terminated(state.run_id, status, end_time=end_ms)
        state.ended, state.status = True, status
        if self._registers(outcome):
            self._register(outcome, state.run_id)
        return None

    def _at_once(self, outcome: TrialOutcome, own: TrialResult, state: _Trial) -> _AtOnce:
        """A trial that ended before its run was made: its run and model, to write at once."""
        from unitrain.stores.registry import TAG, run_tags, version_description
        from unitrain.stores.sql_writes import FinishedRun, ModelVersion

        trial_id = outcome.trial_id
        if state.planned_run is None:
            state.planned_run = self.registry.new_run_location()
        run_id, artifact_uri = state.planned_run
        artifacts = self.trials_root / trial_id / "record" / "artifacts"
        if artifacts.is_dir():
            self.registry.log_artifacts(run_id, artifacts)
        model = None
        if self._registers(outcome) and trial_id not in self._models:
            self.registry.log_artifacts(run_id, outcome.model_dir, "model")
            description, tags = version_description(
                job=self.plan.job,
                plugin=self.plan.plugin,
                dataset=self.plan.dataset.id,
                hyperparameters=outcome.hyperparameters,
                metrics=outcome.metrics,
                trial_id=trial_id,
                job_run=self.job_run,
            )
            model = ModelVersion(self.registry.name, f"{artifact_uri}/model", description, tags)
        now = time.time()
        metrics, offset = self._metrics(trial_id, state, outcome.metrics)
        run = FinishedRun(
            run_id=run_id,
            experiment_id=self.registry.experiment_id(),
            artifact_uri=artifact_uri,
            name=f"{self.plan.job}-{trial_id}",
            status=_run_status(outcome),
            start_ms=int((own.started_at or now) * 1000),
            end_ms=int((own.ended_at or now) * 1000),
            tags=run_tags(self.plan, {TAG.TRIAL: trial_id, TAG.NODE: own.node}, self.job_run),
            params=_params(own.hyperparameters),
            metrics=metrics,
            model=model,
        )
        return _AtOnce(outcome, state, run, offset)

    def _write_together(self, pending: list[_AtOnce]) -> None:
        """Write the runs (and models) of trials that ended, in one transaction."""
        if not pending:
            return
        try:
            versions = self.registry.write_finished_runs([item.run for item in pending])
        except Exception as error:  # noqa: BLE001 (the upload step tries again)
            if len(pending) == 1:
                self._failed(pending[0].outcome.trial_id, error)
                return
            for item in pending:  # one at a time: one trial's trouble is not the others'
                self._write_together([item])
            return
        for item, version in zip(pending, versions, strict=True):
            trial_id, state = item.outcome.trial_id, item.state
            state.run_id, state.params_sent, state.offset = item.run.run_id, True, item.offset
            state.ended, state.status = True, item.run.status
            self.run_ids[trial_id] = item.run.run_id
            if version is not None:
                self._models[trial_id] = version
            if trial_id in self._models and self._registers(item.outcome):
                self.registered[trial_id] = self._models[trial_id]

    def _ensure_run(self, trial_id: str, own: TrialResult, state: _Trial) -> None:
        from unitrain.stores.registry import TAG

        if state.run_id:
            return
        state.run_id = self.registry.start_run(
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
        from mlflow.entities import Metric, Param

        lines, offset = self._metrics(trial_id, state, final)
        metrics = [Metric(*line) for line in lines]
        params = []
        if not state.params_sent:
            params = [Param(k, v) for k, v in _params(own.hyperparameters).items()]
        for start in range(0, max(len(metrics), 1), _BATCH):
            chunk = metrics[start : start + _BATCH]
            if chunk or params:
                # MLflow takes a metric or parameter sent again as the same one.
                self.registry.client.log_batch(state.run_id, metrics=chunk, params=params)
                params = []
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

    def _registers(self, outcome: TrialOutcome) -> bool:
        # With keep_models, which models to keep is known only at the end.
        return outcome.has_model and self.plan.config.keep_models is None

    def _register(self, outcome: TrialOutcome, run_id: str) -> None:
        self.registered[outcome.trial_id] = self.registry.register(
            run_id=run_id,
            model_dir=outcome.model_dir,
            job=self.plan.job,
            plugin=self.plan.plugin,
            dataset=self.plan.dataset.id,
            hyperparameters=outcome.hyperparameters,
            metrics=outcome.metrics,
            trial_id=outcome.trial_id,
            job_run=self.job_run,
            existing=self._models,
        )
        self._models[outcome.trial_id] = self.registered[outcome.trial_id]


def _run_status(outcome: TrialOutcome) -> str:
    if outcome.status == "ERROR":
        return "FAILED"
    return {"FINISHED": "FINISHED", "KILLED": "KILLED"}.get(outcome.ended, "FAILED")


def _params(hyperparameters: dict[str, Any]) -> dict[str, str]:
    import json

    return {
        k: v if isinstance(v, str) else json.dumps(v, default=str)
        for k, v in hyperparameters.items()
    }
