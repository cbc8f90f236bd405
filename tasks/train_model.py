"""Step 3 (training mode): run the plugin's ``train()`` once, logging into the job's MLflow run."""

from __future__ import annotations

import shutil
import tempfile

from prefect import get_run_logger, task

from unitrain.checkpoints import TrainingCheckpoints
from unitrain.errors import UnitrainError
from unitrain.job.plan import JobPlan
from unitrain.job.records import Dataset
from unitrain.plugin_loader import load_plugin
from unitrain.plugin_runner import PluginCall, PluginResult, run_plugin
from unitrain.reporting.progress import JobProgress
from unitrain.run_sinks import MlflowSink
from unitrain.stores.job_state import JobFolder
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore


def prepare_worker(plugin: str | None) -> None:
    """Ready a new Ray worker for this step before the step needs it (see ``connect_early``):
    this module and the plugin imported, the job's MLflow store opened."""
    load_plugin(plugin)
    ModelRegistry().store.experiment_id()


@task(name="train")
def train_model(
    plan: JobPlan, dataset: Dataset, progress: JobProgress, run_id: str, resume: bool
) -> PluginResult:
    """Call the plugin's ``train(run, dataset, hyperparameter, checkpoint)``, logging into the
    job's run ``run_id`` (which the job ends once its model is published).

    Each report whose model folder changed is kept as the job's checkpoint; a
    job that ``resume`` s an interrupted run continues from the latest one.
    """
    logger = get_run_logger()
    registry = ModelRegistry()
    runs = RunStore(registry.store)
    folder = JobFolder(plan.job).training_path
    checkpoints = TrainingCheckpoints(folder)
    own = checkpoints.latest() if resume else None
    if own is None:
        checkpoints.clear()
    else:
        logger.info("continuing the interrupted training of %r after report %d", plan.job,
                    own.iteration)  # fmt: skip
    output = folder / "model"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    step = progress.step("train")
    try:
        with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
            call = PluginCall(
                plan=plan,
                dataset=dataset,
                hyperparameter=dict(plan.hyperparameter),
                output=output,
                sink=MlflowSink(run_id, runs),
                checkpoint=own or registry.resolve_checkpoint(plan.checkpoint_id, download),
                progress=step,
                reporter=checkpoints.reporter(output, after=own.iteration if own else 0),
            )
            result = run_plugin(call)
    except BaseException as error:
        # interrupted (Ctrl-C, SIGTERM, a cancellation), or failed
        runs.end_run(run_id, "FAILED" if isinstance(error, Exception) else "KILLED")
        raise
    step.complete()
    if not result.model_dir:
        raise UnitrainError(
            f"plugin {plan.plugin!r} saved no model: write its files into run.checkpoint_output"
        )
    logger.info(
        "training finished: %s",
        ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items())),
    )
    return result
