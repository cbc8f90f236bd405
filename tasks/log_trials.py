"""Step 4 (tuning mode): publish the final trial table and say which trials failed."""

from __future__ import annotations

from prefect import get_run_logger, task

from unitrain.job.plan import TuningPlan
from unitrain.tune.results import TuneOutcome


@task(name="log_trials")
def log_trials(plan: TuningPlan, outcome: TuneOutcome) -> None:
    """The table as the search left it (register_best_trial adds the winner's mark)."""
    outcome.table.publish(plan.job)
    logger = get_run_logger()
    for trial in outcome.trials:
        if not trial.has_model:
            logger.warning("trial %s: no model, %s", trial.trial_id, trial.why_no_model)
