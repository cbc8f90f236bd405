"""Planning a job: everything checked before anything runs.

:func:`plan_job` is called twice with the same rules: by the CLI before it
starts a server or a cluster (so a bad job starts nothing), and by the flow's
first task (so a deployment run is checked too, including against jobs that
are running right now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unitrain.catalog import CatalogEntry, DatasetCatalog
from unitrain.errors import JobValidationError, NotFoundError
from unitrain.params import LATEST, TrainParams, validate_params
from unitrain.plugins import Plugin, load_plugin
from unitrain.registry import ModelRegistry

__all__ = ["JobPlan", "plan_job"]


@dataclass(frozen=True)
class JobPlan:
    """A validated job, ready to run. Picklable: it travels to Ray workers."""

    params: TrainParams
    plugin: str
    dataset: CatalogEntry
    checkpoint_id: int | None
    hyperparameter: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def job(self) -> str:
        """The stored job name."""
        return self.params.stored_name

    @property
    def mode(self) -> str:
        return "tuning" if self.params.is_tune else "training"


def plan_job(
    params: dict[str, Any] | TrainParams,
    plugin: str | None = None,
    *,
    registry: ModelRegistry | None = None,
    catalog: DatasetCatalog | None = None,
    running_jobs: Callable[[str], list[str]] | None = None,
) -> JobPlan:
    """Validate ``params`` against the plugin, the catalog, the registry and running jobs."""
    parsed = params if isinstance(params, TrainParams) else validate_params(params)
    try:
        loaded: Plugin = load_plugin(plugin)
    except NotFoundError as error:
        raise JobValidationError(str(error)) from None
    notes: list[str] = []

    fixed = parsed.hyperparameter or {}
    if parsed.is_tune:
        hyperparameter = loaded.validate_search(fixed, parsed.hyperparameters or [])
        _check_tuning(parsed)
    else:
        hyperparameter = loaded.validate_hyperparameter(fixed)

    catalog = catalog or DatasetCatalog()
    try:
        dataset = catalog.get(parsed.dataset)
    except NotFoundError as error:
        raise JobValidationError(f"dataset: {error}") from None

    registry = registry or ModelRegistry()
    checkpoint_id = _resolve_checkpoint(parsed, registry, notes)
    _check_name_free(parsed, registry, running_jobs)
    return JobPlan(
        params=parsed,
        plugin=loaded.name,
        dataset=dataset,
        checkpoint_id=checkpoint_id,
        hyperparameter=hyperparameter,
        notes=notes,
    )


def _check_tuning(params: TrainParams) -> None:
    """Build the searcher and scheduler once: what they cannot handle fails here."""
    from unitrain.schedulers import build_scheduler
    from unitrain.search_algorithms import check_search_space

    assert params.tune_config is not None and params.hyperparameters is not None
    check_search_space(params.hyperparameters, params.tune_config)
    build_scheduler(params.tune_config)


def _resolve_checkpoint(
    params: TrainParams, registry: ModelRegistry, notes: list[str]
) -> int | None:
    value = params.checkpoint
    if value is None:
        return None
    if isinstance(value, int):
        try:
            registry.get(value)
        except NotFoundError as error:
            raise JobValidationError(str(error)) from None
        return value
    source = params.stored_name if value == LATEST else _encoded(value[len(LATEST) + 1 :])
    latest = registry.latest_of(source)
    if latest is None:
        if value == LATEST:
            notes.append(
                f"checkpoint 'latest': job {source!r} has no model yet; training from scratch"
            )
            return None
        raise JobValidationError(
            f"checkpoint: job {source!r} has no registered model to continue from"
        )
    notes.append(f"checkpoint {value!r} resolved to model {latest}")
    return latest


def _check_name_free(
    params: TrainParams,
    registry: ModelRegistry,
    running_jobs: Callable[[str], list[str]] | None,
) -> None:
    name = params.stored_name
    # Continuing a job under its own name ("checkpoint": "latest") is how
    # scheduled retraining works, so an existing model of that name is expected.
    continues_itself = params.checkpoint == LATEST
    if not params.is_tune and not continues_itself and registry.job_exists(name):
        raise JobValidationError(
            f"name: a model of job {name!r} already exists; choose another name, or pass "
            '"checkpoint": "latest" to continue that job'
        )
    if running_jobs is not None:
        running = running_jobs(name)
        if running:
            raise JobValidationError(
                f"name: job {name!r} is already running (flow run {', '.join(running)}); "
                "wait for it to finish or choose another name"
            )


def _encoded(name: str) -> str:
    from unitrain.names import encode_job_name

    return encode_job_name(name)
