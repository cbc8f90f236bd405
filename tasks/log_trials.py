"""Step 4 (tuning mode): publish the final trial table and say which trials failed."""

from __future__ import annotations

from prefect import get_run_logger, task

from tasks.tune_trials import TuneOutcome
from unitrain.jobs import JobPlan


@task(name="log_trials")
def log_trials(plan: JobPlan, outcome: TuneOutcome) -> None:
    """The table as the search left it (register_best_trial adds the winner's mark)."""
    outcome.table.publish(plan.job)
    logger = get_run_logger()
    for trial in outcome.trials:
        if trial.status == "ERROR":
            logger.warning("trial %s failed: %s", trial.trial_id, trial.error)
        elif not trial.checkpoint_dir:
            logger.warning("trial %s stopped before it saved a model", trial.trial_id)
