"""Step 5 (tuning mode): pick the best trial and mark it where users look."""

from __future__ import annotations

import math

from prefect import get_run_logger, task

from tasks.tune_trials import TrialOutcome, TuneOutcome
from unitrain.errors import UnitrainError
from unitrain.jobs import JobPlan
from unitrain.registry import TAG, ModelRegistry
from unitrain.summary import TrialPoint, objective_figure
from unitrain.trial_table import TrialTable


def best_trial(trials: list[TrialOutcome], metric: str, mode: str) -> TrialOutcome:
    """The finished trial with the best ``metric``; ties go to the earliest trial."""
    scored = [
        t
        for t in trials
        if t.status == "TERMINATED"
        and t.checkpoint_dir
        and math.isfinite(t.metrics.get(metric, math.nan))
    ]
    if not scored:
        raise UnitrainError(
            f"no trial finished with a model and a value for {metric!r}; see the trial table"
        )
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda t: sign * t.metrics[metric])


@task(name="register_best_trial")
def register_best_trial(plan: JobPlan, outcome: TuneOutcome) -> str:
    """Choose the winner, tag the job's MLflow run, and log the table with it marked."""
    config = plan.params.tune_config
    assert config is not None
    best = best_trial(outcome.trials, config.metric, config.mode)
    client = ModelRegistry().client
    client.set_tag(outcome.parent_run_id, "unitrain.best_trial", best.trial_id)
    client.log_metric(outcome.parent_run_id, f"best_{config.metric}", best.metrics[config.metric])
    if best.mlflow_run_id:
        client.set_tag(best.mlflow_run_id, TAG.BEST, "true")
    points = [
        TrialPoint(t.trial_id, t.finished_at, t.metrics.get(config.metric)) for t in outcome.trials
    ]
    figure = objective_figure(points, config.metric, config.mode)
    try:
        client.log_figure(outcome.parent_run_id, figure, "tuning.png")
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)  # this worker process is reused by later tasks
    final = TrialTable(**{**outcome.table.payload(), "best_trial": best.trial_id})
    final.publish(plan.job)
    client.log_dict(outcome.parent_run_id, final.payload(), "trials.json")
    get_run_logger().info(
        "best trial %s: %s=%s with %s",
        best.trial_id,
        config.metric,
        best.metrics[config.metric],
        best.config,
    )
    return best.trial_id
