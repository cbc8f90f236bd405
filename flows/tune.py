"""The tuning branch of the ``train`` flow: tune -> log_trials -> mark_best_trial -> upload
(-> promote, when the job names an alias)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from prefect.utilities.annotations import opaque

from unitrain.job.plan import TuningPlan
from unitrain.job.records import Dataset, EarlierTrial
from unitrain.reporting.progress import JobProgress
from unitrain.runtime.job_run import JobRun
from unitrain.stores.publisher import ModelPublisher
from unitrain.tasks import log_trials, mark_best_trial, promote_model, tune_trials, upload_models
from unitrain.tune.results import publication_of, remove_unkept_models, search_result
from unitrain.ui.plots import publish_plots
from unitrain.ui.summary import SearchReport, publish_summary

T = TypeVar("T")


def run_tuning(
    run: JobRun, plan: TuningPlan, dataset: Dataset, progress: JobProgress
) -> dict[str, Any]:
    """Run the search, mark the best trial, publish the trials' models; return the result."""
    # Each step runs in this process: Ray Tune's driver and the bookkeeping need
    # no worker of their own; the trials run on the cluster. The plan and the
    # trials are passed opaque: Prefect still links each step to the one whose
    # result it takes, without walking every trial's metrics twice per step.
    outcome = tune_trials(_opaque(plan), dataset, progress, run.run_id, run.resumed)
    log_trials(_opaque(plan), _opaque(outcome))
    ranking = mark_best_trial(_opaque(plan), _opaque(outcome))
    best = ranking.best

    kept = ModelPublisher(plan, run.run_id).kept(
        outcome.trials, [best.key, *(t.key for t in ranking.front)], plan.objective
    )
    model_ids = upload_models(
        _opaque(plan),
        run.run_id,
        _opaque([publication_of(t, run.run_id) for t in kept]),
        progress,
        _opaque(outcome.registered),
    )
    remove_unkept_models(outcome, kept)
    front = ranking.front if plan.config.several else None
    result = search_result(outcome, kept, model_ids, best, front)
    if plan.promotion is not None and result.get("model_id") is not None:
        result["promotion"] = promote_model(
            _opaque(plan), result["model_id"], best.metrics, dataset, run.run_id
        )
    plots = publish_plots(plan, outcome.trials, run.run_id, ranking)
    registered = {t.trial_id: model_id for t, model_id in zip(kept, model_ids, strict=True)}
    publish_summary(
        plan,
        result,
        metrics=best.metrics,
        run_id=best.run_id if isinstance(best, EarlierTrial) else best.mlflow_run_id,
        search=SearchReport.of(plan, outcome, registered, plots, ranking),
    )
    return result


def _opaque(value: T) -> T:
    """``value`` as a task's argument that Prefect links to its task but does not walk."""
    return cast(T, opaque(value))
