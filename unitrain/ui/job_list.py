"""``unitrain jobs``: the jobs of this home, newest first, and one job in detail.

Read from what the jobs left behind: each job's record (``job.json``: mode,
state, times, its MLflow run and Prefect flow runs) and the models it
registered. A record that says ``running`` while no process holds the job's
name belongs to a run that crashed: it is shown as ``crashed`` (the next run
of the job resumes it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from unitrain.job.names import encode_job_name
from unitrain.job.objective import Mode
from unitrain.runtime.served import served_api_url
from unitrain.settings import settings
from unitrain.stores.job_state import JobFolder, JobRecord
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore

__all__ = ["LISTED_MODELS", "JobSummary", "job_details", "list_jobs"]

#: models listed per job: one page of the registry, however many the job has
LISTED_MODELS = 1000


@dataclass(frozen=True)
class JobSummary:
    """One job as ``unitrain jobs`` lists it."""

    name: str
    mode: str
    state: str
    started_at: float
    duration_s: float
    #: the job's best model (tuning) or its latest model (training); None without one
    model_id: int | None
    best_metrics: dict[str, float]
    #: the job's models, the newest :data:`LISTED_MODELS` of them
    model_ids: list[int]
    mlflow_run: str
    prefect_flow_runs: list[str] = field(default_factory=list)
    error: str = ""
    #: the job has more models than ``model_ids`` lists
    more_models: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _records() -> list[tuple[JobFolder, JobRecord]]:
    found = []
    root = settings().storage_dir()
    if not root.is_dir():
        return []
    for path in root.glob("*/job.json"):
        folder = JobFolder(path.parent.name)
        record = folder.record()
        if record is not None:
            found.append((folder, record))
    return sorted(found, key=lambda pair: pair[1].started_at, reverse=True)


def _state(folder: JobFolder, record: JobRecord) -> str:
    if record.state == "running" and not folder.is_running():
        return "crashed"
    return record.state


def _summary(folder: JobFolder, record: JobRecord, registry: ModelRegistry) -> JobSummary:
    # Every round of the job (training resumes), newest first, one page; the best by its
    # alias: reads that cost the same whatever the size of the job or of the registry.
    models = registry.models(job=record.job, newest=LISTED_MODELS + 1)
    more = len(models) > LISTED_MODELS
    models = models[-LISTED_MODELS:]
    best = registry.best_of(record.job)
    chosen = next((m for m in models if m.model_id == best), None)
    if chosen is None and best is not None:
        chosen = registry.get(best)
    if chosen is None and models:
        chosen = models[-1]
    state = _state(folder, record)
    end = time.time() if state == "running" else record.updated_at
    return JobSummary(
        name=record.job,
        mode=record.mode,
        state=state,
        started_at=record.started_at,
        duration_s=max(end - record.started_at, 0.0),
        model_id=chosen.model_id if chosen else None,
        best_metrics=dict(chosen.metrics) if chosen else {},
        model_ids=sorted(m.model_id for m in models),
        mlflow_run=record.run_id,
        prefect_flow_runs=list(record.flow_runs),
        error=record.error,
        more_models=more,
    )


def list_jobs(limit: int = 20) -> list[JobSummary]:
    """The most recent jobs, newest first."""
    registry = ModelRegistry()
    return [_summary(f, r, registry) for f, r in _records()[:limit]]


def job_details(name: str) -> dict[str, Any] | None:
    """One job: its summary, its links and (tuning) its final trial table."""
    folder = JobFolder(encode_job_name(name))
    record = folder.record()
    if record is None:
        return None
    registry = ModelRegistry()
    runs = RunStore(registry.store)
    details: dict[str, Any] = _summary(folder, record, registry).as_json()
    details["links"] = links(record, runs)
    details["trials"] = []
    if record.mode == Mode.TUNING and record.run_id:
        try:
            table = runs.read_json(record.run_id, "trials.json")
            details["trials"] = [
                {"trial_id": trial_id, **values}
                for trial_id, values in table.get("trials", {}).items()
            ]
            details["best_trial"] = table.get("best_trial", "")
        except Exception:  # noqa: BLE001 (an unfinished job has no final table yet)
            pass
    return details


def links(record: JobRecord, runs: RunStore) -> dict[str, str]:
    """Where to look at the job: its MLflow run, its Prefect flow runs (when a UI serves them)."""
    found = {}
    if record.run_id:
        found["mlflow"] = (
            f"{settings().mlflow_ui_url}/#/experiments/{runs.experiment_id()}/runs/{record.run_id}"
        )
    if record.flow_runs:
        found["prefect"] = f"{_prefect_ui()}/runs/flow-run/{record.flow_runs[-1]}"
    return found


def _prefect_ui() -> str:
    """The Prefect UI of ``unitrain serve`` (where the flow runs are shown)."""
    served = served_api_url() or settings().prefect_api_url or "http://127.0.0.1:4200/api"
    return served.removesuffix("/api")
