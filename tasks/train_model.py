"""Step 3 (training mode): run the plugin's ``train()`` once, logging into one MLflow run."""

from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.catalog import Dataset
from unitrain.errors import UnitrainError
from unitrain.home import storage_dir
from unitrain.jobs import JobPlan
from unitrain.names import job_folder
from unitrain.numbers import finite_metrics
from unitrain.plugins import load_plugin
from unitrain.progress import JobProgress
from unitrain.registry import TAG, ModelRegistry
from unitrain.run import TrainRun


@dataclass(frozen=True)
class TrainOutcome:
    """What training produced: the MLflow run, the model folder and the final metrics."""

    run_id: str
    model_dir: str
    metrics: dict[str, float]


@task(name="train")
def train_model(plan: JobPlan, dataset: Dataset, progress: JobProgress) -> TrainOutcome:
    """Call the plugin's ``train(run, dataset, hyperparameter, checkpoint)``."""
    logger = get_run_logger()
    registry = ModelRegistry()
    flow_run_id = flow_run.get_id() or "local"
    output = job_folder(storage_dir(), plan.job) / flow_run_id / "model"
    output.mkdir(parents=True, exist_ok=True)
    run_id = registry.start_run(plan, run_name=plan.job, tags={TAG.FLOW_RUN: flow_run_id})
    step = progress.step("train")
    run = TrainRun(
        run_id=run_id,
        tracking_uri=registry.tracking_uri,
        progress=step,
        checkpoint_output=str(output),
    )
    try:
        registry.log_params(run_id, plan.hyperparameter)
        with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
            checkpoint = registry.resolve_checkpoint(plan.checkpoint_id, download)
            if checkpoint is not None:
                logger.info("resuming from model %s", checkpoint.model_id)
            plugin = load_plugin(plan.plugin)
            returned = plugin.train(run, dataset, dict(plan.hyperparameter), checkpoint)
    except BaseException as error:
        run.close()
        registry.client.set_terminated(run_id, "FAILED")
        if not isinstance(error, Exception):
            raise
        logger.error("training failed:\n%s", traceback.format_exc())
        # The plugin's own exception may not unpickle in the driver; keep its text.
        raise UnitrainError(
            f"plugin {plan.plugin!r} failed: {type(error).__name__}: {error}"
        ) from None
    metrics = {
        **run.last_metrics,
        **(finite_metrics(returned) if isinstance(returned, dict) else {}),
    }
    run.close(final_metrics=metrics)
    registry.client.set_terminated(run_id, "FINISHED")
    step.complete()
    model_dir = Path(run.checkpoint_output or output)  # the plugin may have chosen its own
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        raise UnitrainError(
            f"plugin {plan.plugin!r} saved no model: write its files into run.checkpoint_output"
        )
    logger.info(
        "training finished: %s", ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
    )
    return TrainOutcome(run_id=run_id, model_dir=str(model_dir), metrics=metrics)
