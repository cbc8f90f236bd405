"""Step 3 (tuning mode): run the Ray Tune search; one MLflow child run per trial."""

from __future__ import annotations

from prefect import get_run_logger, task

from unitrain.job.plan import TuningPlan
from unitrain.job.records import Dataset
from unitrain.reporting.progress import JobProgress
from unitrain.tune.results import TuneOutcome


# Not the flow's log_prints: what Ray Tune prints (its configuration table) is the
# library's output, for the job's log file, not the job's own lines.
@task(name="tune", log_prints=False)
def tune_trials(
    plan: TuningPlan, dataset: Dataset, progress: JobProgress, run_id: str, resume: bool
) -> TuneOutcome:
    """Run every trial of the search on the flow's Ray cluster, under the job's run ``run_id``."""
    # Imported here: Ray Tune takes a second to import, which a training job never needs.
    from unitrain.tune.search import run_search

    return run_search(
        plan, dataset, progress, run_id=run_id, resume=resume, logger=get_run_logger()
    )
