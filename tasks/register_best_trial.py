"""Step 5 (tuning mode): pick the best trial and mark it where users look."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from prefect import get_run_logger, task

from unitrain.errors import UnitrainError
from unitrain.job.plan import TuningPlan
from unitrain.stores.registry import TAG, ModelRegistry
from unitrain.tune.results import TrialOutcome, TuneOutcome
from unitrain.tune.study import EarlierTrial
from unitrain.ui.summary import TrialPoint, objective_figure
from unitrain.ui.trial_table import TrialTable


def best_trial(
    trials: list[TrialOutcome],
    metric: str,
    mode: str,
    earlier: Sequence[EarlierTrial] = (),
) -> TrialOutcome | EarlierTrial:
    """The trial with a model and the best ``metric``; ties go to the earliest trial.

    ``earlier`` are the trials of the study the search extends: one of them
    wins when no new trial does better.
    """
    scored: list[TrialOutcome | EarlierTrial] = [
        t for t in earlier if t.model_id is not None and t.objective(metric) is not None
    ]
    scored += [t for t in trials if t.has_model and t.objective(metric) is not None]
    if not scored:
        raise UnitrainError(
            f"no trial finished with a model and a value for {metric!r}; "
            f"of {len(trials)} trial(s): {failure_summary(trials, metric)}"
        )
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda t: sign * t.metrics[metric])


def failure_summary(trials: list[TrialOutcome], metric: str, shown: int = 5) -> str:
    """Why trials gave no model, grouped: ``"3 x plugin 'p' failed: ...; 1 x ..."``."""
    reasons = Counter(
        (t.why_no_model or f"it reported no finite {metric!r}").splitlines()[0][:300]
        for t in trials
        if not t.has_model or t.objective(metric) is None
    )
    parts = [f"{count} x {reason}" for reason, count in reasons.most_common(shown)]
    if len(reasons) > shown:
        parts.append(f"and {len(reasons) - shown} other reason(s); see the trial table")
    return "; ".join(parts) or "no trial ran"


@task(name="register_best_trial")
def register_best_trial(plan: TuningPlan, outcome: TuneOutcome) -> str:
    """Choose the winner, tag the job's MLflow run, and log the table with it marked."""
    config = plan.config
    best = best_trial(outcome.trials, config.metric, config.mode, plan.earlier)
    registry = ModelRegistry()
    client = registry.client
    client.set_tag(outcome.parent_run_id, "unitrain.best_trial", best.key)
    client.log_metric(outcome.parent_run_id, f"best_{config.metric}", best.metrics[config.metric])
    if isinstance(best, EarlierTrial):
        assert best.model_id is not None  # best_trial only picks trials with a model
        registry.mark_best(best.model_id, plan.job)  # no new trial beat the study's best
    elif best.mlflow_run_id:
        client.set_tag(best.mlflow_run_id, TAG.BEST, "true")
    points = [TrialPoint(t.key, t.finished_at, t.metrics.get(config.metric)) for t in plan.earlier]
    points += [
        TrialPoint(t.trial_id, t.finished_at, t.metrics.get(config.metric)) for t in outcome.trials
    ]
    figure = objective_figure(points, config.metric, config.mode)
    client.log_figure(outcome.parent_run_id, figure, "tuning.png")
    final = TrialTable(**{**outcome.table.payload(), "best_trial": best.key})
    final.publish(plan.job)
    client.log_dict(outcome.parent_run_id, final.payload(), "trials.json")
    get_run_logger().info(
        "best trial %s: %s=%s with %s",
        best.key,
        config.metric,
        best.metrics[config.metric],
        best.config,
    )
    return best.key
