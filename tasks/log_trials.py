"""Step 4 (tuning mode): keep the final trial table with the job's MLflow run."""

from __future__ import annotations

from prefect import get_run_logger, task

from tasks.tune_trials import TuneOutcome
from unitrain.jobs import JobPlan
from unitrain.registry import ModelRegistry


@task(name="log_trials")
def log_trials(plan: JobPlan, outcome: TuneOutcome) -> None:
    """Publish the last snapshot and store every trial's config, metrics and status."""
    outcome.table.publish(plan.job)
    client = ModelRegistry().client
    client.log_dict(outcome.parent_run_id, outcome.table.payload(), "trials.json")
    for trial in outcome.trials:
        if trial.status == "ERROR":
            get_run_logger().warning("trial %s failed: %s", trial.trial_id, trial.error)
