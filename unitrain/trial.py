"""The function every Ray Tune trial runs: the plugin, wrapped.

Without a ``tune()`` the plugin's ``train()`` is called with the trial's
hyperparameters. Whatever the plugin returns is normalised (a dict is kept, a
number ``x`` becomes ``{metric: x}``), merged over what it reported with
``ray.tune.report`` and logged through ``run.log_metric``, and reported once
more with the trial's checkpoint, so the optimised metric is always present.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitrain.catalog import Dataset
from unitrain.errors import UnitrainError
from unitrain.jobs import JobPlan
from unitrain.registry import TAG, Checkpoint, ModelRegistry
from unitrain.run import TrainRun

__all__ = ["TrialSetup", "make_trainable", "normalise_result", "CHECKPOINT_OUTPUT_KEY"]

CHECKPOINT_OUTPUT_KEY = "checkpoint_output"
MLFLOW_RUN_KEY = "mlflow_run_id"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a job shares; picklable."""

    plan: JobPlan
    dataset: Dataset
    trials_root: str
    parent_run_id: str
    tracking_uri: str


def normalise_result(returned: Any, metric: str) -> dict[str, Any]:
    """``{"accuracy": 0.9}`` stays; ``0.9`` becomes ``{metric: 0.9}``; ``None`` is ``{}``."""
    if returned is None:
        return {}
    if isinstance(returned, dict):
        return {str(k): v for k, v in returned.items()}
    if isinstance(returned, bool):
        raise TypeError(f"a trial returned {returned!r}; return a number or a dict of metrics")
    if isinstance(returned, int | float):
        return {metric: float(returned)}
    if hasattr(returned, "item"):  # numpy / torch scalars
        return {metric: float(returned.item())}
    raise TypeError(
        f"a trial returned a {type(returned).__name__}; return a number or a dict of metrics"
    )


@contextlib.contextmanager
def _remember_reports(into: dict[str, Any]) -> Iterator[None]:
    """Record what the plugin passes to ``ray.tune.report`` during this trial only.

    The wrapper is installed for the duration of one trial call in the trial's
    own worker process and removed afterwards; Ray's module is left as it was.
    """
    from ray import tune

    original = tune.report

    def report(metrics: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        into.update(metrics)
        original(metrics, *args, **kwargs)

    tune.report = report
    try:
        yield
    finally:
        tune.report = original


def make_trainable(setup: TrialSetup) -> Callable[[dict[str, Any]], None]:
    """The function trainable for this job's trials."""

    def unitrain_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        from unitrain.plugins import load_plugin

        plan = setup.plan
        metric = plan.params.tune_config.metric  # type: ignore[union-attr]
        trial_id = tune.get_context().get_trial_id()
        plugin = load_plugin(plan.plugin)
        hyperparameter = plugin.validate_hyperparameter({**plan.hyperparameter, **config})
        registry = ModelRegistry(tracking_uri=setup.tracking_uri)
        output = Path(setup.trials_root) / trial_id / "model"
        if output.exists():  # a restarted trial starts clean
            shutil.rmtree(output)
        output.mkdir(parents=True)
        child = registry.client.create_run(
            registry.experiment_id(),
            run_name=f"{plan.job}-{trial_id}",
            tags={
                "mlflow.parentRunId": setup.parent_run_id,
                TAG.JOB: plan.job,
                TAG.TRIAL: trial_id,
                TAG.PLUGIN: plan.plugin,
                TAG.DATASET: str(plan.dataset.id),
                TAG.NODE: ray.get_runtime_context().get_node_id(),
            },
        )
        run_id = child.info.run_id
        registry.log_params(run_id, config)
        run = TrainRun(
            run_id=run_id,
            tracking_uri=setup.tracking_uri,
            trial_id=trial_id,
            checkpoint_output=str(output),
        )
        reported: dict[str, Any] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
                checkpoint = None
                if plan.checkpoint_id is not None:
                    path = registry.download(plan.checkpoint_id, download)
                    record = registry.get(plan.checkpoint_id)
                    checkpoint = Checkpoint(plan.checkpoint_id, str(path), record)
                with _remember_reports(reported):
                    if plugin.tune is not None:
                        returned = plugin.tune(hyperparameter, run, setup.dataset, checkpoint)
                    else:
                        returned = plugin.train(run, setup.dataset, hyperparameter, checkpoint)
            final = {
                **run.last_metrics,
                **reported,
                **normalise_result(returned, metric),
            }
            if metric not in final:
                raise UnitrainError(
                    f"trial {trial_id} reported no {metric!r} (tune_config.metric); it reported "
                    f"{sorted(final) or 'nothing'}: return it, report it, or log it"
                )
        except Exception:
            run.close()
            registry.client.set_terminated(run_id, "FAILED")
            raise
        numbers = {k: float(v) for k, v in final.items() if _is_number(v)}
        run.close()
        registry.log_metrics(run_id, numbers)
        registry.client.set_terminated(run_id, "FINISHED")
        location = run.checkpoint_output or str(output)
        has_files = Path(location).is_dir() and any(Path(location).iterdir())
        summary = {
            **numbers,
            CHECKPOINT_OUTPUT_KEY: location if has_files else "",
            MLFLOW_RUN_KEY: run_id,
        }
        # The folder itself is the trial's model (on storage the upload step can
        # read); copying it into Ray's checkpoint storage as well would only cost time.
        tune.report(summary)

    return unitrain_trial


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_error(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()
