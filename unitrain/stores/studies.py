"""Reading a study back from MLflow: the trials of the earlier rounds a search extends.

A job that extends another (``tune_config.extend``) gets the finished trials
of the named job's latest finished search run, and, when that job extended
another in turn, theirs too, so rounds of a study chain. A job that extends
itself starts a new round of its own study after its latest finished round.
What the rounds must share is checked by ``unitrain.job.study``.
"""

from __future__ import annotations

import math
from typing import Any

from unitrain.errors import JobValidationError
from unitrain.job.names import encode_job_name
from unitrain.job.objective import Mode
from unitrain.job.params import TrainParams
from unitrain.job.records import EarlierTrial
from unitrain.job.search_space import parse_entry
from unitrain.job.study import JOB_FILE, MAX_ROUNDS, check_same_search, config_from_params
from unitrain.stores.mlflow_store import TAG, MlflowStore
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore

__all__ = ["StudyStore"]


class StudyStore:
    """The studies of one MLflow store."""

    def __init__(self, store: MlflowStore | None = None) -> None:
        self.store = store or MlflowStore()
        self.runs = RunStore(self.store)
        self.registry = ModelRegistry(store=self.store)

    def load(self, params: TrainParams, plugin: str) -> tuple[list[EarlierTrial], list[str]]:
        """The earlier trials ``params`` extends, and notes for the user; raise if it cannot."""
        config = params.tune_config
        if config is None or config.extend is None:
            return [], []
        source = encode_job_name(config.extend)
        own_round = source == params.stored_name
        run = self._finished_round(source, before=None)
        if run is None:
            if own_round:
                return [], [
                    f"tune_config.extend: job {source!r} has no finished round yet; "
                    "starting its study"
                ]
            raise JobValidationError(
                f"tune_config.extend: no finished tuning job named {source!r} to extend; "
                "name a tuning job that finished"
            )
        check_same_search(params, plugin, self._job_file(run, source), source)

        trials: list[EarlierTrial] = []
        seen: set[str] = set()
        rounds = 0
        while run is not None and run.info.run_id not in seen and rounds < MAX_ROUNDS:
            seen.add(run.info.run_id)
            rounds += 1
            job = run.data.tags.get(TAG.JOB, source)
            trials[:0] = self._trials_of(run, job, params)
            extends = self._job_file(run, job)["params"].get("tune_config", {}).get("extend")
            if extends is None:
                break
            following = encode_job_name(extends)
            run = self._finished_round(
                following, before=run.info.start_time if following == job else None
            )
        rounds_text = f"{rounds} earlier round(s)" if rounds > 1 else f"job {source!r}"
        notes = [
            f"tune_config.extend: {len(trials)} earlier trial(s) of {rounds_text} "
            "given to the search as evaluated"
        ]
        return trials, notes

    def _finished_round(self, job: str, before: int | None) -> Any:
        """The job's latest finished search run (started before ``before``, in ms), or None."""
        return self.runs.latest_job_run(job, mode=Mode.TUNING, status="FINISHED", before_ms=before)

    def _job_file(self, run: Any, job: str) -> dict[str, Any]:
        try:
            data = self.runs.read_json(run.info.run_id, JOB_FILE)
        except Exception:  # noqa: BLE001 (a run from before jobs recorded themselves)
            raise JobValidationError(
                f"tune_config.extend: job {job!r} did not record its search (no {JOB_FILE} in "
                "its MLflow run)"
            ) from None
        if not isinstance(data, dict) or "params" not in data:
            raise JobValidationError(
                f"tune_config.extend: job {job!r} has an unreadable {JOB_FILE}"
            )
        return data

    def _trials_of(self, run: Any, job: str, params: TrainParams) -> list[EarlierTrial]:
        """The finished trials of one search run that reported the metric, in finishing order."""
        if params.tune_config is None:
            return []
        metric = params.tune_config.objective.metric
        entries = [parse_entry(e.model_dump()) for e in params.hyperparameters or []]
        children = self.runs.children(run.info.run_id, status="FINISHED")
        models = self.registry.registered_trials(job, run.info.run_id)
        trials = []
        for child in children:
            trial_id = child.data.tags.get(TAG.TRIAL, "")
            value = child.data.metrics.get(metric)
            config = config_from_params(entries, child.data.params)
            if not trial_id or value is None or not math.isfinite(value) or config is None:
                continue
            trials.append(
                EarlierTrial(
                    job=job,
                    trial_id=trial_id,
                    config=config,
                    metrics=dict(child.data.metrics),
                    model_id=models.get(trial_id),
                    run_id=child.info.run_id,
                    finished_at=(child.info.end_time or 0) / 1000,
                )
            )
        return sorted(trials, key=lambda t: (t.finished_at, t.trial_id))
