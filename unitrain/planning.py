"""Planning a job: everything checked before anything runs, once.

:func:`plan_job` turns validated parameters into a :class:`~unitrain.job.plan.JobPlan`
(training) or a :class:`~unitrain.job.plan.TuningPlan` (tuning), checked
against the plugin, the dataset catalog, the model registry and the earlier
rounds of a study. ``unitrain run`` plans a job before it starts a server or a
cluster (so a bad job starts nothing) and hands the plan to the flow, which
runs exactly that plan. A deployment run hands the flow bare parameters, and
the flow plans them itself. A finished job is refused here; an unfinished one
(crashed, interrupted, failed) is resumed when run again with the same
parameters.
"""

from __future__ import annotations

from typing import Any

from unitrain.errors import JobValidationError, NotFoundError
from unitrain.job.names import encode_job_name
from unitrain.job.params import LATEST, TrainParams, TuneConfig, validate_params
from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.job.search_space import Distribution
from unitrain.plugin_loader import load_plugin
from unitrain.stores.catalog import DatasetCatalog
from unitrain.stores.job_state import JobFolder, params_digest
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.studies import StudyStore
from unitrain.tune.auto import AUTO, choose

__all__ = ["plan_job"]


def plan_job(
    params: dict[str, Any] | TrainParams,
    plugin: str | None = None,
    *,
    registry: ModelRegistry | None = None,
    catalog: DatasetCatalog | None = None,
) -> JobPlan:
    """Validate ``params`` against the plugin, the catalog and the registry."""
    parsed = params if isinstance(params, TrainParams) else validate_params(params)
    try:
        loaded = load_plugin(plugin)
    except NotFoundError as error:
        raise JobValidationError(str(error)) from None

    notes: list[str] = []
    fixed = parsed.hyperparameter or {}
    space: tuple[Distribution, ...] = ()
    config = parsed.tune_config
    if not parsed.is_tune:
        hyperparameter = loaded.validate_hyperparameter(fixed)
    elif parsed.hyperparameters is None or config is None:  # TrainParams forbids it
        raise JobValidationError("hyperparameters and tune_config are required when is_tune=True")
    else:
        space = tuple(parsed.hyperparameters)
        hyperparameter = loaded.validate_search(fixed, space)
        config = _resolve_search_alg(space, config, parsed.total_trials, notes)
        _check_tuning(space, config)

    if catalog is None:
        catalog = DatasetCatalog()
    try:
        dataset = catalog.get(parsed.dataset)
    except NotFoundError as error:
        raise JobValidationError(f"dataset: {error}") from None

    if registry is None:
        registry = ModelRegistry()
    checkpoint_id = _resolve_checkpoint(parsed, registry, notes)
    digest = params_digest(parsed.model_dump(mode="json"), loaded.name)
    if not _resumes(parsed, digest, notes):
        _check_no_model_yet(parsed, registry)

    common: dict[str, Any] = dict(
        params=parsed,
        plugin=loaded.name,
        dataset=dataset,
        checkpoint_id=checkpoint_id,
        hyperparameter=hyperparameter,
        digest=digest,
    )
    if config is None:
        return JobPlan(**common, notes=tuple(notes))
    earlier, extend_notes = StudyStore(registry.store).load(parsed, loaded.name)
    notes.extend(extend_notes)
    for entry in space:
        if entry.q_defaulted:
            notes.append(f"{entry.name}: no q given, using q={entry.describe()['q']}")
    return TuningPlan(
        **common,
        notes=tuple(notes),
        space=space,
        config=config,
        total_trials=parsed.total_trials,
        grid_size=parsed.grid_size,
        earlier=tuple(earlier),
    )


def _resolve_search_alg(
    space: tuple[Distribution, ...], config: TuneConfig, trials: int, notes: list[str]
) -> TuneConfig:
    """``search_alg: "auto"`` made concrete: the algorithm, and a note saying why."""
    if config.search_alg.name != AUTO:
        return config
    name, why = choose(space, config, trials)
    notes.append(f"search_alg auto: {name}, as {why}")
    return config.model_copy(
        update={"search_alg": config.search_alg.model_copy(update={"name": name})}
    )


def _check_tuning(space: tuple[Distribution, ...], config: TuneConfig) -> None:
    """Build the searcher and scheduler once: what they cannot handle fails here."""
    # Imported here: building them imports Ray Tune, which planning a training job
    # (and refusing a bad job) never needs.
    from unitrain.tune.schedulers import build_scheduler
    from unitrain.tune.searchers import check_search_space

    check_search_space(space, config)
    build_scheduler(config)


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
    word, _, other = value.partition(":")
    source = encode_job_name(other) if other else params.stored_name
    found = registry.latest_of(source) if word == LATEST else registry.best_of(source)
    if found is None:
        if not other:
            notes.append(
                f"checkpoint {word!r}: job {source!r} has no model yet; training from scratch"
            )
            return None
        which = "registered" if word == LATEST else "best"
        raise JobValidationError(
            f"checkpoint: job {source!r} has no {which} model to continue from"
        )
    notes.append(f"checkpoint {value!r} resolved to model {found}")
    return found


def _resumes(params: TrainParams, digest: str, notes: list[str]) -> bool:
    """Whether this run resumes an unfinished run of the same job.

    A finished job is not run again (but retraining with ``"checkpoint":
    "latest"`` starts a new round of it); an unfinished one resumes only with
    the same parameters.
    """
    record = JobFolder(params.stored_name).record()
    if record is None:
        return False
    name = params.stored_name
    if record.finished:
        if params.checkpoint == LATEST and not params.is_tune:
            return False
        extend = params.tune_config.extend if params.tune_config else None
        if extend is not None and encode_job_name(extend) == name:
            notes.append(f"job {name!r} finished; starting a new round of its study")
            return False
        ways = "choose a new name" + (
            f', or pass "tune_config": {{"extend": "{params.name}"}} to run a new round of it'
            if params.is_tune
            else ', or pass "checkpoint": "latest" to continue it'
        )
        raise JobValidationError(f"name: job {name!r} already finished; {ways}")
    if record.digest != digest:
        raise JobValidationError(
            f"name: job {name!r} stopped before it finished ({record.state}) with other "
            "parameters; run it again unchanged to resume it, or choose a new name"
        )
    notes.append(f"job {name!r} stopped before it finished ({record.state}): resuming it")
    return True


def _check_no_model_yet(params: TrainParams, registry: ModelRegistry) -> None:
    name = params.stored_name
    # Continuing a job under its own name ("checkpoint": "latest") is how
    # scheduled retraining works, so an existing model of that name is expected.
    continues_itself = params.checkpoint == LATEST
    if not params.is_tune and not continues_itself and registry.job_exists(name):
        raise JobValidationError(
            f"name: a model of job {name!r} already exists; choose another name, or pass "
            '"checkpoint": "latest" to continue that job'
        )
