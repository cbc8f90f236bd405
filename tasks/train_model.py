"""Step 3 (training mode): run the plugin's ``train()`` once, logging into the job's MLflow run."""

from __future__ import annotations

import tempfile

from prefect import get_run_logger, task
from prefect.runtime import flow_run

from unitrain.errors import UnitrainError
from unitrain.job.names import job_folder
from unitrain.job.plan import JobPlan
from unitrain.job.records import Dataset
from unitrain.plugin_runner import PluginCall, PluginResult, run_plugin
from unitrain.reporting.progress import JobProgress
from unitrain.run_sinks import MlflowSink
from unitrain.settings import settings
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore


@task(name="train")
def train_model(
    plan: JobPlan, dataset: Dataset, progress: JobProgress, run_id: str
) -> PluginResult:
    """Call the plugin's ``train(run, dataset, hyperparameter, checkpoint)``, logging into the
    job's run ``run_id`` (which the job ends once its model is published)."""
    logger = get_run_logger()
    registry = ModelRegistry()
    runs = RunStore(registry.store)
    flow_run_id = flow_run.get_id() or "local"
    output = job_folder(settings().storage_dir(), plan.job) / flow_run_id / "model"
    output.mkdir(parents=True, exist_ok=True)
    step = progress.step("train")
    try:
        with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
            call = PluginCall(
                plan=plan,
                dataset=dataset,
                hyperparameter=dict(plan.hyperparameter),
                output=output,
                sink=MlflowSink(run_id, runs),
                checkpoint=registry.resolve_checkpoint(plan.checkpoint_id, download),
                progress=step,
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
