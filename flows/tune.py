"""The tuning branch of the ``train`` flow: tune -> log_trials -> register_best_trial -> upload."""

from __future__ import annotations

import shutil
from typing import Any, TypeVar, cast

from prefect.utilities.annotations import opaque

from unitrain.job.plan import TuningPlan
from unitrain.plugin_api import Dataset
from unitrain.runtime.job_run import JobRun
from unitrain.tasks import ModelUpload, log_trials, register_best_trial, tune_trials, upload_models
from unitrain.tune.results import TrialOutcome, TuneOutcome
from unitrain.ui.plots import publish_plots
from unitrain.ui.progress import JobProgress
from unitrain.ui.summary import TrialPoint, publish_summary

T = TypeVar("T")


def run_tuning(
    run: JobRun, plan: TuningPlan, dataset: Dataset, progress: JobProgress
) -> dict[str, Any]:
    """Run the search, mark the best trial, register every trial's model; return the result."""
    # Each step runs in this process: Ray Tune's driver and the bookkeeping need
    # no worker of their own; the trials run on the cluster. The plan and the
    # trials are passed opaque: Prefect still links each step to the one whose
    # result it takes, without walking every trial's metrics twice per step.
    outcome = tune_trials(_opaque(plan), dataset, progress, run.run_id, run.resumed)
    log_trials(_opaque(plan), _opaque(outcome))
    best_id = register_best_trial(_opaque(plan), _opaque(outcome))

    uploadable = kept_models(plan, outcome, best_id)
    uploads = [
        ModelUpload(
            run_id=t.mlflow_run_id or outcome.parent_run_id,
            # a trial without a run of its own keeps its model apart in the job's run
            artifact_path="model" if t.mlflow_run_id else f"trials/{t.trial_id}/model",
            model_dir=t.model_dir,
            metrics=t.metrics,
            hyperparameter=t.hyperparameters,
            trial_id=t.trial_id,
            best=t.trial_id == best_id,
            job_run=run.run_id,
            model_id=outcome.registered.get(t.trial_id),
        )
        for t in uploadable
    ]
    # (the uploads are made here from the search's outcome: wait_for links the two)
    model_ids = upload_models(
        _opaque(plan), _opaque(uploads), progress, wait_for=[_opaque(outcome)]
    )

    trial_models = [
        {
            "trial_logdir": t.trial_logdir,
            "model_id": model_id,
            "config": t.config,
            "metrics": t.metrics,
            "trial_id": t.trial_id,
        }
        for t, model_id in zip(uploadable, model_ids, strict=True)
    ]
    best = next((m for m in trial_models if m["trial_id"] == best_id), None)
    if best is None:  # no new trial beat the best of the study this search extends
        winner = next(t for t in plan.earlier if t.key == best_id)
        best = {
            "trial_logdir": "",
            "model_id": winner.model_id,
            "config": winner.config,
            "metrics": winner.metrics,
            "trial_id": winner.key,
        }
    result = {
        "model_id": best["model_id"],
        "best_trial": {key: best[key] for key in ("trial_logdir", "config", "metrics", "trial_id")},
        "trial_models": trial_models,
    }
    metric = plan.config.metric
    registered = {t.trial_id: model_id for t, model_id in zip(uploadable, model_ids, strict=True)}
    points = [
        TrialPoint(t.key, t.finished_at, t.objective(metric), t.model_id, t.run_id)
        for t in plan.earlier
    ]
    points += [
        TrialPoint(
            t.trial_id,
            t.finished_at,
            t.metrics.get(metric),
            registered.get(t.trial_id),
            t.mlflow_run_id,
        )
        for t in outcome.trials
    ]
    kept = {t.trial_id for t in uploadable}
    dropped = [t for t in outcome.trials if t.has_model and t.trial_id not in kept]
    for trial in dropped:  # their runs, parameters and metrics stay in MLflow
        shutil.rmtree(trial.model_dir, ignore_errors=True)
    run_id = next(
        (t.mlflow_run_id for t in outcome.trials if t.trial_id == best_id),
        next((t.run_id for t in plan.earlier if t.key == best_id), ""),
    )
    search = {"stopped": outcome.stopped, **outcome.compute}
    plots = publish_plots(plan, outcome.trials, run.run_id)
    publish_summary(
        plan,
        result,
        metrics=best["metrics"],
        run_id=run_id,
        trials=points,
        search=search,
        plots=plots,
    )
    return result


def _opaque(value: T) -> T:
    """``value`` as a task's argument that Prefect links to its task but does not walk."""
    return cast(T, opaque(value))


def kept_models(plan: TuningPlan, outcome: TuneOutcome, best_id: str) -> list[TrialOutcome]:
    """The trials whose models are registered: every one, or the ``keep_models`` best."""
    with_model = [trial for trial in outcome.trials if trial.has_model]
    keep = plan.config.keep_models
    if keep is None or len(with_model) <= keep:
        return with_model
    metric, sign = plan.config.metric, (-1.0 if plan.config.mode == "max" else 1.0)

    def rank(trial: TrialOutcome) -> tuple[bool, bool, float]:
        value = trial.objective(metric)
        return (trial.trial_id != best_id, value is None, sign * value if value is not None else 0)

    chosen = {t.trial_id for t in sorted(with_model, key=rank)[:keep]}
    return [trial for trial in with_model if trial.trial_id in chosen]  # in trial order
