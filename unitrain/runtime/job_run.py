"""One run of a job, from the flow's side: its name held, its record kept, its leftovers ended.

:func:`job_run` wraps everything a flow does after validation. It holds the
job's name (a lock the kernel drops with the process), ends what a crashed
earlier run of the job left behind (Prefect flow runs still RUNNING become
Crashed, MLflow runs still RUNNING become KILLED), decides whether this run
resumes an unfinished one, opens the job's MLflow run (a resumed job
continues its own), and records how the run ended: ``finished``, ``failed``
or ``interrupted`` (Ctrl-C, SIGTERM, a cancellation), ending the job's MLflow
runs accordingly.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from unitrain.job.plan import JobPlan
from unitrain.job.study import JOB_FILE, job_file
from unitrain.reporting.logs import run_logger
from unitrain.runtime.prefect_server import mark_crashed_runs
from unitrain.runtime.ray_cluster import reap_orphaned_ray
from unitrain.stores.job_state import JobFolder, JobRecord
from unitrain.stores.mlflow_store import TAG, MlflowStore
from unitrain.stores.runs import RunStore

__all__ = ["JobRun", "job_run", "end_leftovers"]

log = logging.getLogger(__name__)

# Cleaning up after an interrupt must not wait out a store outage.
_CLEANUP_RETRY_S = 5.0


@dataclass(frozen=True)
class JobRun:
    """What the steps of this run need to know about the job's history."""

    plan: JobPlan
    folder: JobFolder
    record: JobRecord
    #: True when this run continues an unfinished run of the same job
    resumed: bool

    @property
    def run_id(self) -> str:
        """The job's MLflow run (tuning: the parent of the trials' runs)."""
        return self.record.run_id


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger()


def end_leftovers(job: str, *, flow_run_id: str | None, status: str = "KILLED") -> None:
    """End what runs of ``job`` that are gone left RUNNING (call it holding the name)."""
    runs = RunStore(MlflowStore(store_retry_s=_CLEANUP_RETRY_S))
    ended = runs.end_stale_runs(job, status)
    if ended:
        _logger().info("ended %d MLflow run(s) of job %r left running: %s", len(ended), job, status)
    if flow_run_id is not None:
        reaped = reap_orphaned_ray()
        if reaped:
            _logger().info("stopped %d Ray process(es) a killed job left behind", len(reaped))

        crashed = mark_crashed_runs(job, exclude=flow_run_id)
        if crashed:
            _logger().info("marked flow run(s) %s of job %r Crashed", ", ".join(crashed), job)


@contextlib.contextmanager
def job_run(plan: JobPlan, flow_run_id: str) -> Iterator[JobRun]:
    """Hold the job for one run of the flow and record how the run ends."""
    folder = JobFolder(plan.job)
    with folder.locked():
        end_leftovers(plan.job, flow_run_id=flow_run_id)
        previous = folder.record()
        resumed = previous is not None and not previous.finished and previous.digest == plan.digest
        now = time.time()
        if resumed and previous is not None:
            record = previous.moved_to("running", flow_runs=[*previous.flow_runs, flow_run_id])
            _logger().info(
                "job %r stopped before it finished (%s); resuming it", plan.job, previous.state
            )
        else:
            record = JobRecord(
                job=plan.job,
                mode=plan.mode,
                digest=plan.digest,
                state="running",
                flow_runs=[flow_run_id],
                started_at=now,
                updated_at=now,
            )
            # State of an earlier, different job of this name is not this run's.
            for kept in (folder.tune_path, folder.trials_path, folder.training_path):
                shutil.rmtree(kept, ignore_errors=True)
        runs = RunStore()
        if resumed and record.run_id:
            runs.reopen_run(record.run_id)
        else:
            run_id = runs.start_run(
                plan, run_name=plan.job, tags={TAG.FLOW_RUN: flow_run_id, TAG.MODE: plan.mode}
            )
            # What a later job needs to extend this search (tune_config.extend).
            runs.log_dict(run_id, job_file(plan.params, plan.plugin), JOB_FILE)
            record = replace(record, run_id=run_id)
        folder.save(record)
        try:
            yield JobRun(plan=plan, folder=folder, record=record, resumed=resumed)
        except BaseException as error:
            interrupted = not isinstance(error, Exception)  # Ctrl-C, SIGTERM, cancellation
            status = "KILLED" if interrupted else "FAILED"
            with contextlib.suppress(Exception):  # the store may be why the job failed
                end_leftovers(plan.job, flow_run_id=None, status=status)
            folder.save(
                record.moved_to(
                    "interrupted" if interrupted else "failed",
                    error=f"{type(error).__name__}: {error}"[:1000],
                )
            )
            raise
        runs.end_run(record.run_id, "FINISHED")
        # Runs still RUNNING now belong to trial attempts whose process died.
        runs.end_stale_runs(plan.job, "KILLED")
        folder.save(record.moved_to("finished", error=""))
