"""Step 1: validate the job against the plugin, the catalog, the registry and the cluster."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from unitrain.errors import JobValidationError
from unitrain.job.plan import JobPlan
from unitrain.planning import plan_job
from unitrain.runtime.resources import check_trial_resources


@task(name="validate_job")
def validate_job(params: dict[str, Any], plugin: str | None, planned: Any = None) -> JobPlan:
    """Check every rule before anything runs; the plan says what will run.

    ``planned`` is the plan ``unitrain run`` already made in this process; only
    the check against the cluster is repeated for it. Anything else
    (parameters from a deployment or the API) is planned here from scratch.
    Whether a job of the same name is running is the flow's to check: it holds
    the job's name while it runs.
    """
    if planned is not None and not isinstance(planned, JobPlan):
        raise JobValidationError("plan: set only by unitrain's own callers; leave it out")
    plan = planned or plan_job(params, plugin)
    # This task runs on the flow's Ray cluster: a request it can never satisfy
    # fails here, instead of leaving trials PENDING forever.
    check_trial_resources(plan.num_cpus, plan.num_gpus)
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
