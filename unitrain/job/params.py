"""Job parameters: the ``params`` object of a ``train`` job, validated once.

A job is ``{"action": "train", "params": {...}}`` (or a bare params object).
:func:`parse_job` turns it into a :class:`TrainParams` or raises
:class:`~unitrain.errors.JobValidationError` whose lines each name the field
and the rule. The old ``{"action": "tune"}`` envelope is still accepted and
rewritten, with a deprecation warning.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unitrain.errors import JobValidationError
from unitrain.job.algorithms import SCHEDULERS, SEARCH_ALGORITHMS
from unitrain.job.conditions import check_conditions
from unitrain.job.names import check_job_name, encode_job_name
from unitrain.job.objective import Objective
from unitrain.job.promotion import PromotionConfig
from unitrain.job.search_space import SearchSpaceEntry
from unitrain.settings import settings

__all__ = [
    "BEST",
    "LATEST",
    "SearchAlgConfig",
    "SchedulerConfig",
    "StopConfig",
    "TuneConfig",
    "TrainParams",
    "Job",
    "parse_job",
    "validate_params",
]

LATEST = "latest"
#: ``checkpoint: "best"``: the model ``best-<job>`` points at
BEST = "best"


def _known_name(value: str, kind: str, known: tuple[str, ...]) -> str:
    normalised = value.strip().lower()
    if normalised not in known:
        raise ValueError(f"unknown {kind} {value!r}; supported: {', '.join(known)}")
    return normalised


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchAlgConfig(_Strict):
    """``tune_config.search_alg``: which algorithm proposes the trials."""

    name: str = "basicvariantgenerator"
    points_to_evaluate: list[dict[str, Any]] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _known_name(value, "search algorithm", (*SEARCH_ALGORITHMS, "auto"))


class SchedulerConfig(_Strict):
    """``tune_config.scheduler``: which trials to stop early."""

    name: str = "fifo"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _known_name(value, "scheduler", SCHEDULERS)


class StopConfig(_Strict):
    """``tune_config.stop``: end the search early when it has done enough."""

    #: stop once a trial ends with the metric at or beyond this value
    target: float | None = Field(default=None, allow_inf_nan=False)
    #: stop once this many trials in a row ended without beating the best
    patience: int | None = Field(default=None, ge=1, le=1_000_000)
    #: stop once the trials have used this much compute (resources x time)
    cpu_hours: float | None = Field(default=None, gt=0, le=1e6)
    gpu_hours: float | None = Field(default=None, gt=0, le=1e6)

    @property
    def any(self) -> bool:
        return any(
            v is not None for v in (self.target, self.patience, self.cpu_hours, self.gpu_hours)
        )


class Constraint(_Strict):
    """One entry of ``tune_config.constraints``: a metric that must stay at or below ``max``
    (or at or above ``min``) for a trial to count."""

    metric: str = Field(min_length=1)
    max: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_bound(self) -> Constraint:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"constraint on {self.metric!r}: give exactly one of max or min")
        return self

    def violation(self, metrics: dict[str, float]) -> float | None:
        """How far ``metrics`` break the constraint (0 when they keep it; None: no value)."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        if self.max is not None:
            return max(value - self.max, 0.0)
        assert self.min is not None
        return max(self.min - value, 0.0)

    def describe(self) -> str:
        return (
            f"{self.metric} <= {self.max:g}"
            if self.max is not None
            else (f"{self.metric} >= {self.min:g}")
        )


#: the schedulers and search algorithms that understand several objectives
SEVERAL_OBJECTIVES = {"scheduler": ("fifo", "moasha"), "search_alg": ("optunasearch",
                      "basicvariantgenerator", "auto")}  # fmt: skip


class TuneConfig(_Strict):
    """``tune_config``: what to optimise and how many trials to run.

    ``metric`` is one name, or a list of them with ``mode`` a list of the same
    length: several objectives, whose best trials are a Pareto front.
    """

    metric: str | list[str] = Field(min_length=1)
    mode: Literal["max", "min"] | list[Literal["max", "min"]] = "max"
    #: with several objectives: which metric picks the one model ``model_id`` and
    #: ``best-<job>`` point at, among the front (default: the first metric)
    select: str | None = None
    #: metrics a trial must keep within bounds to count (never the best, never on the front)
    constraints: list[Constraint] = Field(default_factory=list, max_length=100)
    num_samples: int | None = Field(default=None, ge=1)
    max_concurrent_trials: int | None = Field(default=None, ge=1, le=100_000)
    seed: int | None = None
    #: how many times a failed trial is run again (Ray Tune's FailureConfig.max_failures)
    max_failures: int = Field(default=0, ge=0, le=100)
    #: the whole search stops after this long; what finished is kept
    time_budget_s: float | None = Field(default=None, gt=0, le=1e8)
    #: a trial still running after this long fails ("timed out after N s")
    trial_timeout_s: float | None = Field(default=None, gt=0, le=1e8)
    search_alg: SearchAlgConfig = Field(default_factory=SearchAlgConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    stop: StopConfig = Field(default_factory=StopConfig)
    #: register only this many of the best trials' models (default: every one)
    keep_models: int | None = Field(default=None, ge=1, le=1_000_000)
    #: checkpoints each trial keeps in the job's storage (older ones are deleted as new ones
    #: arrive); default 2, and 4 with PBT, whose trials restart from each other's
    keep_checkpoints: int | None = Field(default=None, ge=1, le=1000)
    #: a finished tuning job whose trials this search continues (its own name: a new round)
    extend: str | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every optimised metric's name, in order."""
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        """Every optimised metric with its direction."""
        modes = [self.mode] * len(self.metrics) if isinstance(self.mode, str) else self.mode
        return tuple(Objective(m, d) for m, d in zip(self.metrics, modes, strict=True))

    @property
    def several(self) -> bool:
        """Whether the search has several objectives (a Pareto front, not one best)."""
        return len(self.metrics) > 1

    @property
    def objective(self) -> Objective:
        """The one objective trials are ranked by: the only one, or the ``select`` ed one."""
        wanted = self.select or self.metrics[0]
        return next(o for o in self.objectives if o.metric == wanted)

    def feasible(self, metrics: dict[str, float]) -> bool:
        """Whether ``metrics`` keep every constraint (a missing value breaks it)."""
        return all(c.violation(metrics) == 0.0 for c in self.constraints)

    @property
    def checkpoints_kept(self) -> int:
        """How many checkpoints each trial keeps (``keep_checkpoints``, or its default)."""
        if self.keep_checkpoints is not None:
            return self.keep_checkpoints
        return 4 if self.scheduler.name in ("pbt", "pb2") else 2

    @field_validator("extend")
    @classmethod
    def _job_name(cls, value: str | None) -> str | None:
        return None if value is None else check_job_name(value)

    @field_validator("num_samples")
    @classmethod
    def _within_the_cap(cls, value: int | None) -> int | None:
        cap = settings().max_trials
        if value is not None and value > cap:
            raise ValueError(f"at most {cap} trials per job (UNITRAIN_MAX_TRIALS), got {value}")
        return value

    @field_validator("search_alg", "scheduler", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        # "search_alg": "hyperoptsearch" is read as {"name": "hyperoptsearch"}.
        return {"name": value} if isinstance(value, str) else value

    @field_validator("metric")
    @classmethod
    def _metric_names(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError("a metric name, or a list of them, each a non-blank string")
        if len(set(names)) != len(names):
            raise ValueError(f"each metric once, got {names}")
        return value if isinstance(value, str) or len(value) > 1 else value[0]

    @model_validator(mode="after")
    def _objectives_agree(self) -> TuneConfig:
        count = len(self.metrics)
        if isinstance(self.mode, list):
            if len(self.mode) != count:
                raise ValueError(
                    f"mode: one per metric ({count}), got {len(self.mode)}: {self.mode}"
                )
            if count == 1:
                self.mode = self.mode[0]
        if self.select is not None and self.select not in self.metrics:
            raise ValueError(f"select: must be one of the metrics {list(self.metrics)}")
        if not self.several:
            return self
        for kind, allowed in SEVERAL_OBJECTIVES.items():
            name = getattr(self, kind).name
            if name not in allowed:
                raise ValueError(
                    f"{kind}: {name} optimises one metric; with several objectives use "
                    f"{' or '.join(a for a in allowed if a != 'auto')}"
                )
        if self.stop.target is not None or self.stop.patience is not None:
            raise ValueError(
                "stop: target and patience read one metric; with several objectives stop on "
                "num_samples, time_budget_s, cpu_hours or gpu_hours"
            )
        return self


class TrainParams(_Strict):
    """The ``params`` of a train job, in either mode."""

    name: str
    dataset: int | str
    checkpoint: int | str | None = None
    is_tune: bool = False
    num_cpus: float | None = Field(default=None, gt=0, le=1_000_000)
    num_gpus: float | None = Field(default=None, ge=0, le=100_000)
    hyperparameter: dict[str, Any] | None = None
    hyperparameters: list[SearchSpaceEntry] | None = None
    tune_config: TuneConfig | None = None
    #: the alias the new model takes if it beats the model holding it
    promotion: PromotionConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _shapes_match_mode(cls, data: Any) -> Any:
        # Checked before field parsing so a list/dict mix-up gets a message
        # about modes, not a generic type error.
        if not isinstance(data, dict):
            return data
        tune = data.get("is_tune", False)
        if not isinstance(tune, bool):
            raise ValueError(f"is_tune: must be true or false, got {tune!r}")
        for key in ("dataset", "checkpoint"):
            if isinstance(data.get(key), bool):
                raise ValueError(f"{key}: must be an ID or a name, got {data[key]!r}")
        single, space = data.get("hyperparameter"), data.get("hyperparameters")
        if isinstance(single, list):
            raise ValueError(
                "hyperparameter: got a list; training mode (is_tune=false) expects a dict of "
                "fixed values, and a list of search-space entries goes in 'hyperparameters' "
                "with is_tune=true"
            )
        if isinstance(space, dict):
            raise ValueError(
                "hyperparameters: got a dict; tuning mode (is_tune=true) expects a list of "
                "search-space entries, and a dict of fixed values goes in 'hyperparameter'"
            )
        if not tune:
            if single is None:
                raise ValueError("hyperparameter is required when is_tune=False")
            if space is not None:
                raise ValueError(
                    "hyperparameters: only used when is_tune=True; set is_tune=true or remove it"
                )
            if data.get("tune_config") is not None:
                raise ValueError("tune_config: only used when is_tune=True")
        else:
            if space is None:
                raise ValueError("hyperparameters is required when is_tune=True")
            if data.get("tune_config") is None:
                raise ValueError("tune_config is required when is_tune=True")
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_job_name(value)

    @field_validator("num_cpus", "num_gpus")
    @classmethod
    def _in_ray_steps(cls, value: float | None) -> float | None:
        # Ray counts resources in steps of 0.0001 and refuses finer requests at run time.
        if value is not None and value and abs(value * 10_000 - round(value * 10_000)) > 1e-6:
            raise ValueError(f"Ray counts resources in steps of 0.0001, got {value!r}")
        return value

    @field_validator("dataset")
    @classmethod
    def _valid_dataset(cls, value: int | str) -> int | str:
        if isinstance(value, bool):
            raise ValueError("must be a dataset ID, a catalog name or a URI")
        if isinstance(value, int) and value < 0:
            raise ValueError(f"dataset ID must be >= 0, got {value}")
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be blank")
        if isinstance(value, str):
            text = value.strip()
            return int(text) if text.isdigit() else text
        return value

    @field_validator("checkpoint")
    @classmethod
    def _valid_checkpoint(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, bool):
            raise ValueError(
                "must be a model ID, 'latest', 'latest:<job name>', 'best', 'best:<job name>' "
                "or null"
            )
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"model IDs start at 1, got {value}")
            return value
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return int(text)
            for word in (LATEST, BEST):
                if text == word:
                    return text
                if text.startswith(word + ":"):
                    check_job_name(text[len(word) + 1 :])
                    return text
            raise ValueError(
                "must be a model ID, 'latest', 'latest:<job name>', 'best', 'best:<job name>' "
                f"or null, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _promotion_is_complete(self) -> TrainParams:
        given = self.promotion
        if given is None or given.mode is not None:
            return self
        if self.is_tune and self.tune_config is not None:
            if given.metric not in (None, self.tune_config.objective.metric):
                raise ValueError(
                    f"promotion.mode: required (max or min), as the metric {given.metric!r} "
                    "is not the search's"
                )
            return self
        if given.metric is None or given.mode is None:
            raise ValueError(
                "promotion: a training job must give the metric and the mode (max or min) "
                "to compare models by"
            )
        return self

    @model_validator(mode="after")
    def _space_is_consistent(self) -> TrainParams:
        if not self.is_tune or self.hyperparameters is None or self.tune_config is None:
            return self
        if not self.hyperparameters:
            raise ValueError("hyperparameters: must list at least one search-space entry")
        seen: set[str] = set()
        for entry in self.hyperparameters:
            if entry.name in seen:
                raise ValueError(f"hyperparameters: duplicate name {entry.name!r}")
            seen.add(entry.name)
        check_conditions(self.hyperparameters)
        fixed = set(self.hyperparameter or {}) & seen
        if fixed:
            raise ValueError(
                f"hyperparameter: {sorted(fixed)} are also searched in 'hyperparameters'; "
                "give each name in one place only"
            )
        grid = self.grid_size
        cap = settings().max_trials
        if grid > cap:
            raise ValueError(
                f"hyperparameters: the grid has {grid} points; at most {cap} trials per job "
                "(UNITRAIN_MAX_TRIALS)"
            )
        samples = self.tune_config.num_samples
        if grid > 1 and samples is not None and samples % grid:
            raise ValueError(
                f"tune_config.num_samples: the grid has {grid} points, so num_samples must be "
                f"a multiple of {grid} (every point the same number of times), got {samples}"
            )
        points = self.tune_config.search_alg.points_to_evaluate or []
        entries = {entry.name: entry for entry in self.hyperparameters}
        for index, point in enumerate(points):
            where = f"tune_config.search_alg.points_to_evaluate[{index}]"
            unknown = sorted(set(point) - seen)
            if unknown:
                raise ValueError(
                    f"{where}: {unknown} are not in the search space; known names: {sorted(seen)}"
                )
            for name, value in point.items():
                problem = entries[name].rejects(value)
                if problem:
                    raise ValueError(f"{where}.{name}: {problem}")
        return self

    @property
    def stored_name(self) -> str:
        """The name as stored (``:`` and ``,`` percent-encoded)."""
        return encode_job_name(self.name)

    @property
    def grid_size(self) -> int:
        """Number of points of the grid (1 when the space has no ``grid_search``)."""
        return math.prod(entry.grid_points for entry in self.hyperparameters or [])

    @property
    def total_trials(self) -> int:
        """How many trials a tuning job runs: ``num_samples``, else the grid or 10."""
        if not self.is_tune or self.tune_config is None:
            return 1
        if self.tune_config.num_samples is not None:
            return self.tune_config.num_samples
        return self.grid_size if self.grid_size > 1 else 10


@dataclass(frozen=True)
class Job:
    """A parsed job: its parameters, the plugin to run, and notes for the user."""

    params: TrainParams
    plugin: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the params object as given (after the deprecated envelope is rewritten)
    raw: dict[str, Any] = field(default_factory=dict)


def _location(loc: tuple[Any, ...], data: Any) -> str:
    """``('hyperparameters', 1, 'loguniform', 'base')`` -> ``hyperparameters[1] 'lr'.base``."""
    parts: list[str] = []
    node = data
    for index, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and "name" in node and loc[:1] == ("hyperparameters",):
                parts[-1] += f" ({node['name']!r})"
            continue
        if index > 0 and loc[0] == "hyperparameters" and isinstance(loc[index - 1], int):
            continue  # the union tag (the entry's type) adds nothing for the reader
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(p for p in parts if p)


def _format(error: ValidationError, data: Any) -> list[str]:
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field (not one of the documented keys)"
        where = _location(tuple(problem["loc"]), data)
        lines.append(f"{where}: {message}" if where and not message.startswith(where) else message)
    return lines


#: how deep a job's JSON may nest, and how many values it may hold: far above any
#: real job, far below what would make validation slow or recurse without end
MAX_DEPTH = 32
MAX_VALUES = 100_000


def check_shape(document: Any, where: str = "job") -> None:
    """Refuse a document nested too deep or too large, without recursing into it."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise JobValidationError(f"{where}: holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise JobValidationError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((child, depth + 1) for child in value)


def validate_params(params: dict[str, Any]) -> TrainParams:
    """Validate a params object, raising :class:`JobValidationError` with readable lines."""
    if not isinstance(params, dict):
        raise JobValidationError(f"params: expected a JSON object, got {type(params).__name__}")
    check_shape(params, "params")
    try:
        return TrainParams.model_validate(params)
    except ValidationError as error:
        raise JobValidationError(_format(error, params)) from None


def parse_job(document: Any) -> Job:
    """Accept the job envelope (``train`` or the deprecated ``tune``) or bare params."""
    if not isinstance(document, dict):
        raise JobValidationError(f"job: expected a JSON object, got {type(document).__name__}")
    check_shape(document)
    notes: list[str] = []
    if "action" in document or "params" in document:
        unknown = sorted(set(document) - {"action", "params", "plugin"})
        if unknown:
            raise JobValidationError(f"job: unknown keys {unknown}; expected action, params")
        action = document.get("action", "train")
        params = document.get("params")
        if not isinstance(params, dict):
            raise JobValidationError("params: required, and must be a JSON object")
        params = dict(params)
        if action == "tune":
            message = (
                'action "tune" is deprecated: use {"action": "train", "params": '
                '{..., "is_tune": true, "hyperparameters": [...]}}'
            )
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            notes.append(message)
            params = _from_tune_action(params)
        elif action != "train":
            raise JobValidationError(
                f"action: must be 'train' (or the deprecated 'tune'), got {action!r}"
            )
        plugin = document.get("plugin", params.pop("plugin", None))
    else:
        params = dict(document)
        plugin = params.pop("plugin", None)
    if plugin is not None and not isinstance(plugin, str):
        raise JobValidationError("plugin: must be the name of an installed plugin")
    return Job(params=validate_params(params), plugin=plugin, notes=notes, raw=params)


def _from_tune_action(params: dict[str, Any]) -> dict[str, Any]:
    """Rewrite old ``tune`` params: ``hyperparameter`` (a list) becomes ``hyperparameters``."""
    params["is_tune"] = True
    if isinstance(params.get("hyperparameter"), list) and "hyperparameters" not in params:
        params["hyperparameters"] = params.pop("hyperparameter")
    return params
