"""What a trial hands back to the driver, and what the driver makes of it.

A trial writes a :class:`TrialResult` into its own folder (``trial.json``)
when it starts and again when it ends: its model folder, the hyperparameters
it ran with, its final metrics, its node and times. The driver reads it back
and joins it with what Ray Tune knows (status, error, intermediate results)
and with the MLflow run it recorded for the trial into a
:class:`TrialOutcome`. Nothing travels as string keys inside Ray's metrics
dict, and a trial whose process died still leaves its start behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from unitrain.job.records import EarlierTrial
from unitrain.metrics import finite_metrics
from unitrain.reporting.trial_table import TrialTable
from unitrain.runtime.failures import worker_death
from unitrain.stores.publisher import Publication

__all__ = [
    "RAY_BOOKKEEPING",
    "TrialOutcome",
    "TrialResult",
    "TuneOutcome",
    "outcome_of",
    "publication_of",
    "remove_unkept_models",
    "search_result",
]

#: result keys that are Ray's or unitrain's bookkeeping, not the plugin's metrics
RAY_BOOKKEEPING = frozenset(
    {
        "time_this_iter_s",
        "time_total_s",
        "timestamp",
        "training_iteration",
        "pid",
        "done",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_total",
        "episodes_total",
        "timesteps_since_restore",
        "trial_id",
        "epoch",
        "step",
    }
)

TrialStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


@dataclass(frozen=True)
class TrialResult:
    """A trial's own account of itself."""

    trial_id: str
    status: TrialStatus
    #: the folder holding the trial's model ('' when it saved none)
    model_dir: str = ""
    #: every hyperparameter the trial ran with (plugin defaults included)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    #: the Ray node it ran on
    node: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    #: the trial's latest checkpoint that Ray persisted, and the report it came with
    checkpoint: str = ""
    checkpoint_iteration: int = 0
    #: what the trial continued from, each time it did: another trial's state (PBT's
    #: exploit: ``from``, ``iteration``, ``changed`` old -> new) or its own (a retry)
    lineage: list[dict[str, Any]] = field(default_factory=list)

    FILE = "trial.json"

    def save(self, folder: str | Path) -> None:
        """Write ``trial.json`` atomically: a reader never sees half a file."""
        path = Path(folder) / self.FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{self.FILE}.{os.getpid()}")
        temporary.write_text(json.dumps(asdict(self), default=str))
        os.replace(temporary, path)

    @classmethod
    def load(cls, folder: str | Path) -> TrialResult | None:
        path = Path(folder) / cls.FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)

    def ended(self, status: TrialStatus, **changes: Any) -> TrialResult:
        return replace(self, status=status, **changes)


@dataclass(frozen=True)
class TrialOutcome:
    """A trial as the driver sees it once the search is over."""

    trial_id: str
    #: Ray Tune's verdict: TERMINATED (ran to its end or was stopped early) or ERROR
    status: str
    config: dict[str, Any]
    metrics: dict[str, float]
    trial_logdir: str
    model_dir: str
    mlflow_run_id: str
    error: str = ""
    #: when Ray received the trial's last result (seconds since the epoch)
    finished_at: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: how the trial itself says it ended (KILLED: stopped early), '' if it never said
    ended: str = ""
    #: the iteration at which a scheduler stopped it (0: it was not stopped)
    stopped_at: int = 0

    @property
    def has_model(self) -> bool:
        return self.status == "TERMINATED" and bool(self.model_dir)

    @property
    def key(self) -> str:
        """How the trial is named in the job's table (its trial ID)."""
        return self.trial_id

    @property
    def why_no_model(self) -> str:
        """Why this trial registers no model ('' when it does)."""
        if self.has_model:
            return ""
        if self.status == "ERROR":
            return f"it failed: {self.error}"
        if self.ended == "KILLED":
            return (
                "the scheduler stopped it before its plugin saved a model (save it into "
                "run.checkpoint_output before each run.report: a report's checkpoint is what "
                "the folder holds then)"
            )
        return "it saved no model"

    @property
    def model_tags(self) -> dict[str, str]:
        """What the version of this trial's model records besides the job's own tags."""
        return {"unitrain.stopped_at_iteration": str(self.stopped_at)} if self.stopped_at else {}

    def objective(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class TuneOutcome:
    """Everything the search produced: the job's MLflow run, the trials, the final table."""

    parent_run_id: str
    trials: list[TrialOutcome]
    table: TrialTable
    #: trial ID -> model ID of the models registered while the search ran
    registered: dict[str, int] = field(default_factory=dict)
    #: why the search ended (every trial ran, a stopping rule, the time budget)
    stopped: str = ""
    #: what the trials used: cpu_hours and gpu_hours
    compute: dict[str, float] = field(default_factory=dict)


def outcome_of(
    *,
    trial_id: str,
    own: TrialResult | None,
    ray_metrics: dict[str, Any],
    ray_error: Any,
    reported: dict[str, float],
    metric: str | Sequence[str],
    config: dict[str, Any],
    logdir: str,
    run_id: str = "",
    checkpoint: str = "",
) -> TrialOutcome:
    """Join Ray's view of a trial with the trial's own result file.

    A trial that ran to its end has the model its plugin saved last; one a
    scheduler stopped has its latest checkpoint (``checkpoint``, the folder
    Ray persisted with the last report that carried one).
    """
    # What reached Ray (including what a plugin reported to Ray itself), under
    # what the trial recorded at its end.
    merged = {**reported, **finite_metrics(ray_metrics), **(own.metrics if own else {})}
    metrics = {k: v for k, v in merged.items() if k not in RAY_BOOKKEEPING}
    error = _why_failed(ray_error, own)
    wanted = [metric] if isinstance(metric, str) else list(metric)
    missing = [m for m in wanted if m not in metrics]
    if not error and own is not None and own.status == "FINISHED" and missing:
        error = (
            f"trial {trial_id} reported no {', '.join(map(repr, missing))} "
            f"(tune_config.metric); it reported {sorted(metrics) or 'nothing'}: return it, "
            "report it, or log it"
        )
    ended = own.status if own else ""
    if not error and ended == "RUNNING":
        # Ray ended it without an error before it said it finished: a scheduler
        # stopped it (its process may not have written KILLED yet).
        ended = "KILLED"
    model_dir = own.model_dir if own else ""
    stopped_at = 0
    if ended != "FINISHED" and checkpoint and Path(checkpoint).is_dir():
        model_dir = checkpoint
    if ended == "KILLED":
        stopped_at = int(ray_metrics.get("training_iteration") or 0)
    return TrialOutcome(
        trial_id=trial_id,
        status="ERROR" if error else "TERMINATED",
        config=dict(config),
        metrics=metrics,
        trial_logdir=logdir,
        model_dir=model_dir,
        mlflow_run_id=run_id,
        error=error[:2000],
        finished_at=float(ray_metrics.get("timestamp") or 0.0),
        hyperparameters=own.hyperparameters if own else dict(config),
        ended=ended,
        stopped_at=stopped_at,
    )


def _why_failed(ray_error: Any, own: TrialResult | None) -> str:
    """The clearest account of a failed trial: its own, a worker's death, or Ray's."""
    if not ray_error:
        return ""
    if own is not None and own.status == "FAILED" and own.error:
        return own.error  # the plugin's exception, a timeout, a missing metric
    return worker_death(ray_error) or f"{type(ray_error).__name__}: {ray_error}"


def publication_of(trial: TrialOutcome, job_run: str) -> Publication:
    """What publishing ``trial``'s model takes: its folder, into its own run's artifacts (a
    trial recorded without a run of its own keeps its model apart in the job's run)."""
    return Publication(
        run_id=trial.mlflow_run_id or job_run,
        artifact_path="model" if trial.mlflow_run_id else f"trials/{trial.trial_id}/model",
        model_dir=trial.model_dir,
        metrics=trial.metrics,
        hyperparameters=trial.hyperparameters,
        trial_id=trial.trial_id,
        tags=trial.model_tags,
    )


def search_result(
    outcome: TuneOutcome,
    kept: Sequence[TrialOutcome],
    model_ids: Sequence[int],
    best: TrialOutcome | EarlierTrial,
    front: Sequence[TrialOutcome | EarlierTrial] | None = None,
) -> dict[str, Any]:
    """The result a tuning job returns (SPEC section 5): the best model, and every kept one;
    with several objectives also the Pareto front (``pareto_front``)."""
    trial_models = [
        {
            "trial_logdir": t.trial_logdir,
            "model_id": model_id,
            "config": t.config,
            "metrics": t.metrics,
            "trial_id": t.trial_id,
        }
        for t, model_id in zip(kept, model_ids, strict=True)
    ]
    winner = next((m for m in trial_models if m["trial_id"] == best.key), None)
    if winner is None:  # no new trial beat the best of the study this search extends
        winner = {
            "trial_logdir": "",
            "model_id": best.model_id if isinstance(best, EarlierTrial) else None,
            "config": best.config,
            "metrics": best.metrics,
            "trial_id": best.key,
        }
    result: dict[str, Any] = {
        "model_id": winner["model_id"],
        "best_trial": {k: winner[k] for k in ("trial_logdir", "config", "metrics", "trial_id")},
        "trial_models": trial_models,
    }
    if front is not None:
        ids = {m["trial_id"]: m["model_id"] for m in trial_models}
        result["pareto_front"] = [
            {
                "trial_id": t.key,
                "model_id": t.model_id if isinstance(t, EarlierTrial) else ids.get(t.key),
                "metrics": t.metrics,
            }
            for t in front
        ]
    return result


def remove_unkept_models(outcome: TuneOutcome, kept: Sequence[TrialOutcome]) -> None:
    """Remove the model folders of trials whose models were not kept (``keep_models``).

    Their runs, parameters and metrics stay in MLflow.
    """
    chosen = {t.trial_id for t in kept}
    for trial in outcome.trials:
        if trial.has_model and trial.trial_id not in chosen:
            shutil.rmtree(trial.model_dir, ignore_errors=True)
