"""The function every Ray Tune trial runs: the plugin, wrapped.

Without a ``tune()`` the plugin's ``train()`` is called with the trial's
hyperparameters. Whatever the plugin returns is normalised (a dict is kept, a
number ``x`` becomes ``{metric: x}``), merged over what it reported with
``ray.tune.report`` and logged through ``run.log_metric``, and reported once
more with the trial's checkpoint, so the optimised metric is always present.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitrain.catalog import Dataset
from unitrain.errors import UnitrainError
from unitrain.jobs import JobPlan
from unitrain.numbers import finite_metrics
from unitrain.registry import TAG, ModelRegistry
from unitrain.run import TrainRun

__all__ = ["TrialSetup", "make_trainable", "normalise_result", "CHECKPOINT_OUTPUT_KEY"]

CHECKPOINT_OUTPUT_KEY = "checkpoint_output"
MLFLOW_RUN_KEY = "mlflow_run_id"
HYPERPARAMETERS_KEY = "hyperparameters_json"


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
def _remember_reports(into: dict[str, Any], extra: dict[str, Any]) -> Iterator[None]:
    """Record what the plugin passes to ``ray.tune.report`` during this trial only.

    Each report also carries ``extra`` (the trial's MLflow run and model
    folder), so a trial a scheduler stops early is still traceable. The
    wrapper lives for one trial call in the trial's own worker process and is
    removed afterwards; Ray's module is left as it was.
    """
    from ray import tune

    original = tune.report

    def report(metrics: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        into.update(metrics)
        original({**metrics, **extra}, *args, **kwargs)

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

        from unitrain.catalog import DatasetCatalog
        from unitrain.plugins import load_plugin

        plan = setup.plan
        metric = plan.params.tune_config.metric  # type: ignore[union-attr]
        trial_id = tune.get_context().get_trial_id()
        plugin = load_plugin(plan.plugin)
        hyperparameter = plugin.validate_hyperparameter({**plan.hyperparameter, **config})
        dataset = setup.dataset
        if not Path(dataset.path).exists():  # prepared on another node: prepare it here
            dataset = DatasetCatalog().prepare(plan.dataset)
        registry = ModelRegistry(tracking_uri=setup.tracking_uri)
        output = Path(setup.trials_root) / trial_id / "model"
        if output.exists():  # a restarted trial starts clean
            shutil.rmtree(output)
        output.mkdir(parents=True)
        run_id = ""
        run: TrainRun | None = None
        reported: dict[str, Any] = {}
        status = "FAILED"
        try:
            run_id = registry.start_run(
                plan,
                run_name=f"{plan.job}-{trial_id}",
                parent_run_id=setup.parent_run_id,
                tags={TAG.TRIAL: trial_id, TAG.NODE: ray.get_runtime_context().get_node_id()},
            )
            registry.log_params(run_id, config)
            run = TrainRun(
                run_id=run_id,
                tracking_uri=setup.tracking_uri,
                trial_id=trial_id,
                checkpoint_output=str(output),
            )
            with tempfile.TemporaryDirectory(prefix="unitrain-checkpoint-") as download:
                checkpoint = registry.resolve_checkpoint(plan.checkpoint_id, download)
                extra = {CHECKPOINT_OUTPUT_KEY: str(output), MLFLOW_RUN_KEY: run_id}
                with _remember_reports(reported, extra):
                    if plugin.tune is not None:
                        returned = plugin.tune(hyperparameter, run, dataset, checkpoint)
                    else:
                        returned = plugin.train(run, dataset, hyperparameter, checkpoint)
            final = {**run.last_metrics, **reported, **normalise_result(returned, metric)}
            if metric not in final:
                raise UnitrainError(
                    f"trial {trial_id} reported no {metric!r} (tune_config.metric); it reported "
                    f"{sorted(final) or 'nothing'}: return it, report it, or log it"
                )
            metrics = finite_metrics(final)
            if metric not in metrics:
                raise UnitrainError(
                    f"trial {trial_id}: {metric!r} is {final[metric]!r}, not a finite number"
                )
            run.close(final_metrics=metrics)
            status = "FINISHED"
        except BaseException as error:
            # A scheduler stops a trial by raising SystemExit inside tune.report:
            # the run is closed either way, as KILLED rather than FAILED.
            if isinstance(error, SystemExit | KeyboardInterrupt):
                status = "KILLED"
            raise
        finally:
            if run is not None and status != "FINISHED":
                run.close()
            if run_id:
                registry.client.set_terminated(run_id, status)
        location = run.checkpoint_output or str(output)
        has_files = Path(location).is_dir() and any(Path(location).iterdir())
        # The folder itself is the trial's model (on storage the upload step can
        # read); copying it into Ray's checkpoint storage as well would only cost time.
        tune.report(
            {
                **metrics,
                CHECKPOINT_OUTPUT_KEY: location if has_files else "",
                MLFLOW_RUN_KEY: run_id,
                HYPERPARAMETERS_KEY: json.dumps(hyperparameter, default=str),
            }
        )

    return unitrain_trial
