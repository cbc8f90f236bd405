"""Step 3 (training mode): run the plugin's ``train()`` once, logging into one MLflow run."""

from __future__ import annotations

import dataclasses
import tempfile

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.errors import UnitrainError
from unitrain.job.names import job_folder
from unitrain.job.plan import JobPlan
from unitrain.plugin_api import Dataset
from unitrain.plugin_runner import PluginCall, PluginResult, run_plugin
from unitrain.run_sinks import MlflowSink
from unitrain.settings import settings
from unitrain.stores.registry import TAG, ModelRegistry
from unitrain.ui.progress import JobProgress


@task(name="train")
def train_model(plan: JobPlan, dataset: Dataset, progress: JobProgress) -> PluginResult:
    """Call the plugin's ``train(run, dataset, hyperparameter, checkpoint)``."""
    logger = get_run_logger()
    registry = ModelRegistry()
    flow_run_id = flow_run.get_id() or "local"
    output = job_folder(settings().storage_dir(), plan.job) / flow_run_id / "model"
    output.mkdir(parents=True, exist_ok=True)
    step = progress.step("train")
    run_id = registry.start_run(plan, run_name=plan.job, tags={TAG.FLOW_RUN: flow_run_id})
    status = "FAILED"
    try:
        with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
            call = PluginCall(
                plan=plan,
                dataset=dataset,
                hyperparameter=dict(plan.hyperparameter),
                output=output,
                sink=MlflowSink(run_id, registry.tracking_uri),
                checkpoint=registry.resolve_checkpoint(plan.checkpoint_id, download),
                progress=step,
            )
            result = run_plugin(call)
        status = "FINISHED"
    except BaseException as error:
        if not isinstance(error, Exception):  # interrupted, not failed
            status = "KILLED"
        raise
    finally:
        registry.end_run(run_id, status)
    step.complete()
    if not result.model_dir:
        raise UnitrainError(
            f"plugin {plan.plugin!r} saved no model: write its files into run.checkpoint_output"
        )
    logger.info(
        "training finished: %s",
        ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items())),
    )
    return dataclasses.replace(result, run_id=run_id)
