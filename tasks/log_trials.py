"""Step 4 (tuning mode): publish the final trial table and say which trials failed."""

from __future__ import annotations

from collections import Counter

from prefect import get_run_logger, task

from unitrain.job.plan import TuningPlan
from unitrain.tune.results import TuneOutcome


@task(name="log_trials")
def log_trials(plan: TuningPlan, outcome: TuneOutcome) -> None:
    """The table as the search left it (register_best_trial adds the winner's mark)."""
    outcome.table.publish(plan.job)
    without = Counter(t.why_no_model for t in outcome.trials if not t.has_model)
    logger = get_run_logger()
    for why, count in without.most_common():  # once per reason, not once per trial
        logger.warning("%d trial(s) without a model: %s", count, why)
