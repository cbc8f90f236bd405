"""Step 1: validate the job against the plugin, catalog, registry and running jobs."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.jobs import JobPlan, plan_job
from unitrain.prefect_server import running_job_runs
from unitrain.resources import check_trial_resources


@task(name="validate_params")
def validate_job(params: dict[str, Any], plugin: str | None) -> JobPlan:
    """Check every rule before anything runs; the plan says what will run."""
    current = flow_run.get_id()
    plan = plan_job(params, plugin, running_jobs=lambda job: running_job_runs(job, exclude=current))
    # This task runs on the flow's Ray cluster: a request it can never satisfy
    # fails here, instead of leaving trials PENDING forever.
    check_trial_resources(plan.params.num_cpus or 1.0, plan.params.num_gpus or 0.0)
    logger = get_run_logger()
    for note in plan.notes:
        logger.info(note)
    logger.info(
        "job %r: %s mode, plugin %s, dataset %s (%s)",
        plan.job,
        plan.mode,
        plan.plugin,
        plan.dataset.id,
        plan.dataset.name,
    )
    return plan
