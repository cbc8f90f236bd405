"""The search space of a tuning job: one small class per distribution.

Each distribution validates its own rule when it is built (every error names
the offending key), and owns its behaviour: the range it samples from
(:attr:`Distribution.bounds`), whether a value could be drawn from it
(:meth:`Distribution.rejects`), its default ``q``, and a numeric box for
model-based searchers (:meth:`Distribution.internal_bounds` and friends).
Turning an entry into a Ray Tune domain is ``unitrain.tune.ray_space``'s, the
one converter for that library: the job itself knows nothing of Ray.

Conventions users can rely on:

- ``min``/``max`` and ``options`` (never ``lower``/``upper`` or ``values``).
- Integer types (``randint``, ``qrandint``, ``lograndint``, ``qlograndint``)
  include ``max``: ``{"type": "randint", "min": 5, "max": 15}`` can give 15.
  (Ray's own integer domains exclude it; ``unitrain.tune.ray_space`` adds one.)
- ``q`` is optional. Integers default to ``q = 1``; floats default to a power
  of ten that gives at least 100 steps over the range (for ``qloguniform``
  also no larger than ``min``; for ``qrandn``: ``sd / 100``, rounded down to a
  power of ten). Quantised values are the multiples of ``q`` inside
  ``[min, max]``.
- ``base`` is required for the four log types and must be greater than 1. It
  is not passed to Ray: a log-uniform distribution is the same in every base.
- ``when`` makes an entry conditional: ``{"optimizer": ["sgd", "rmsprop"]}``
  samples it, and gives it to the plugin, only when the ``choice`` entry
  ``optimizer`` took one of those options (``unitrain.job.conditions`` checks
  the conditions against each other).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

__all__ = [
    "Distribution",
    "Range",
    "Uniform",
    "QUniform",
    "LogUniform",
    "QLogUniform",
    "RandN",
    "QRandN",
    "RandInt",
    "QRandInt",
    "LogRandInt",
    "QLogRandInt",
    "Choice",
    "GridSearch",
    "SearchSpaceEntry",
    "DISTRIBUTION_TYPES",
    "parse_entry",
]

# Beyond 2**53 a float no longer holds every integer: quantising there is meaningless.
_MAX_STEPS = 2.0**53
# Bounds beyond this overflow when a sampler computes ``max - min``.
_MAX_MAGNITUDE = 1e300


def _power_of_ten_at_most(value: float) -> float:
    """The largest power of ten <= ``value``; 0.0 where there is none among floats."""
    if not value > 0:
        return 0.0
    return 10.0 ** math.floor(math.log10(value))  # 0.0 below 1e-323 (underflow)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


class Distribution(BaseModel):
    """What every search-space entry has: a ``name``, a ``type`` and the type's keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200)
    #: the entry exists only when this ``choice`` entry took one of these options
    when: dict[str, list[Any]] | None = None
    #: what some searchers cannot express ("grid", "normal", "quantised_log", "conditional")
    TRAITS: ClassVar[frozenset[str]] = frozenset()

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @field_validator("when")
    @classmethod
    def _one_condition(cls, value: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if value is None:
            return None
        if len(value) != 1:
            raise ValueError(
                f"when: name one choice entry and its options, e.g. "
                f'{{"optimizer": ["sgd"]}}; got {len(value)} names'
            )
        ((parent, options),) = value.items()
        if not options:
            raise ValueError(f"when: list at least one option of {parent!r}")
        return value

    @property
    def parent(self) -> str | None:
        """The choice entry this entry depends on (None: always sampled)."""
        return next(iter(self.when)) if self.when else None

    def holds(self, config: dict[str, Any]) -> bool:
        """Whether this entry's condition holds for the values in ``config``."""
        if not self.when:
            return True
        ((parent, options),) = self.when.items()
        return parent in config and config[parent] in options

    @property
    def type_name(self) -> str:
        return str(getattr(self, "type"))  # noqa: B009 (every subclass declares it)

    @property
    def traits(self) -> frozenset[str]:
        return self.TRAITS | ({"conditional"} if self.when else frozenset())

    @property
    def bounds(self) -> tuple[Any, Any] | None:
        """The smallest and largest value a draw can give (``None``: unbounded or a list)."""
        return None

    @property
    def grid_points(self) -> int:
        """How many grid points this entry adds (1: it is sampled, not a grid)."""
        return 1

    @property
    def q_defaulted(self) -> bool:
        """True when the entry takes ``q`` and the user left it out."""
        return "q" in type(self).model_fields and getattr(self, "q", None) is None

    def rejects(self, value: Any) -> str:
        """Why ``value`` could never be drawn from this entry ('' when it could)."""
        return ""

    def contains(self, value: Any) -> bool:
        return not self.rejects(value)

    def extremes(self) -> list[Any]:
        """The values a plugin's schema is checked against: the range's ends, or the options."""
        bounds = self.bounds
        return list(bounds) if bounds is not None else []

    def describe(self) -> dict[str, Any]:
        """The entry as ``unitrain validate`` shows it, defaults resolved."""
        return self._dump()

    def _dump(self) -> dict[str, Any]:
        shown = self.model_dump()
        if shown.get("when") is None:
            shown.pop("when", None)
        return shown

    # -- the numeric box of model-based searchers ---------------------------

    def internal_bounds(self) -> tuple[Any, ...]:
        """A box for model-based searchers: ``(low, high)`` or ``(low, high, int)``."""
        raise NotImplementedError(f"{self.type_name} has no bounded numeric form")

    def to_internal(self, value: Any) -> Any:
        """A value of this entry as a point of :meth:`internal_bounds`."""
        raise NotImplementedError(f"{self.type_name} has no bounded numeric form")

    def from_internal(self, raw: Any) -> Any:
        """A point of :meth:`internal_bounds` as a value of this entry (inside its range)."""
        raise NotImplementedError(f"{self.type_name} has no bounded numeric form")


# -- ranges -------------------------------------------------------------------


class Range(Distribution):
    """A number between ``min`` and ``max``, possibly quantised, possibly on a log scale."""

    INTEGER: ClassVar[bool] = False
    LOG: ClassVar[bool] = False

    min: float
    max: float

    @model_validator(mode="after")
    def _valid_range(self) -> Range:
        for key in ("min", "max"):
            if abs(getattr(self, key)) > _MAX_MAGNITUDE:
                raise ValueError(f"{key} must be within +-1e300, got {key}={getattr(self, key)}")
        if self.INTEGER:
            if not self.min <= self.max:
                raise ValueError(f"min must be <= max, got min={self.min}, max={self.max}")
        elif not self.min < self.max:
            raise ValueError(f"min must be less than max, got min={self.min}, max={self.max}")
        if self.LOG:
            if self.min <= 0:
                raise ValueError(f"min and max must be > 0 for a log scale, got min={self.min}")
            base = getattr(self, "base")  # noqa: B009
            if not base > 1:
                raise ValueError(f"base must be greater than 1, got base={base}")
        q = self.effective_q
        if q is not None:
            if not q > 0:  # the default q of a range too narrow, or too close to 0
                raise ValueError(
                    f"q must be given: no default q (a power of ten) fits min={self.min}, "
                    f"max={self.max}"
                )
            if max(abs(self.min), abs(self.max)) / q > _MAX_STEPS:
                raise ValueError(
                    f"q={q} is too small for [min, max] = [{self.min}, {self.max}]: more than "
                    "2**53 multiples of q to tell apart"
                )
            low, high = self._snapped(q)
            if low > high:
                raise ValueError(
                    f"no multiple of q={q} lies between min={self.min} and max={self.max}"
                )
        return self

    @property
    def effective_q(self) -> float | int | None:
        """The ``q`` in force: the given one or the documented default (None: not quantised)."""
        return None

    def _snapped(self, q: float) -> tuple[float, float]:
        """The first and last multiples of ``q`` inside ``[min, max]``."""
        return math.ceil(self.min / q - 1e-9) * q, math.floor(self.max / q + 1e-9) * q

    @property
    def bounds(self) -> tuple[Any, Any]:
        q = self.effective_q
        if q is None:
            low, high = self.min, self.max
        else:
            low, high = self._snapped(q)
        if self.INTEGER:
            return int(round(low)), int(round(high))
        return low, high

    @property
    def traits(self) -> frozenset[str]:
        q = self.effective_q
        # An integer with q = 1 is not quantised, whatever its type says.
        quantised = q is not None and not (self.INTEGER and q == 1)
        return super().traits | ({"quantised_log"} if self.LOG and quantised else set())

    def rejects(self, value: Any) -> str:
        if not _is_number(value):
            return f"expected a number, got {value!r}"
        if not math.isfinite(value) or not self.min <= value <= self.max:
            return f"{value!r} is outside [min, max] = [{_shown(self.min)}, {_shown(self.max)}]"
        if self.INTEGER and not float(value).is_integer():
            return f"expected an integer, got {value!r}"
        q = self.effective_q
        if q is not None and q != 1:
            steps = value / q
            if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
                return f"{value!r} is not a multiple of q={q}"
        return ""

    def describe(self) -> dict[str, Any]:
        shown = self._dump()
        if self.INTEGER:
            shown["min"], shown["max"] = int(self.min), int(self.max)
        q = self.effective_q
        if "q" in type(self).model_fields:
            shown["q"] = q
            if self.q_defaulted:
                shown["q_defaulted"] = True
            shown["sampled_between"] = list(self.bounds)
        return shown

    # -- the numeric box of model-based searchers ---------------------------

    def internal_bounds(self) -> tuple[Any, ...]:
        low, high = self.bounds
        if self.LOG:
            base = getattr(self, "base")  # noqa: B009
            return (math.log(low, base), math.log(high, base))
        if self.INTEGER:
            return (int(low), int(high), int)
        return (float(low), float(high))

    def to_internal(self, value: Any) -> Any:
        if self.LOG:
            return math.log(value, getattr(self, "base"))  # noqa: B009
        return value

    def from_internal(self, raw: Any) -> Any:
        value = getattr(self, "base") ** float(raw) if self.LOG else float(raw)  # noqa: B009
        low, high = self.bounds
        q = self.effective_q
        if q is not None:
            value = round(value / q) * q
        value = min(max(value, low), high)
        return int(round(value)) if self.INTEGER else float(value)


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e15 else str(number)


class Uniform(Range):
    """A float drawn uniformly from ``[min, max]``."""

    type: Literal["uniform"] = "uniform"


class QUniform(Range):
    """A uniform float rounded to a multiple of ``q``."""

    type: Literal["quniform"] = "quniform"
    q: float | None = Field(default=None, gt=0)

    @property
    def effective_q(self) -> float:
        if self.q is not None:
            return self.q
        return _power_of_ten_at_most((self.max - self.min) / 100)


class LogUniform(Range):
    """A float whose logarithm in ``base`` is uniform over ``[log min, log max]``."""

    LOG = True
    type: Literal["loguniform"] = "loguniform"
    base: float


class QLogUniform(Range):
    """A log-uniform float rounded to a multiple of ``q``."""

    LOG = True
    type: Literal["qloguniform"] = "qloguniform"
    base: float
    q: float | None = Field(default=None, gt=0)

    @property
    def effective_q(self) -> float:
        if self.q is not None:
            return self.q
        return _power_of_ten_at_most(min(self.min, (self.max - self.min) / 100))


class RandInt(Range):
    """An integer drawn uniformly from ``[min, max]``, both included."""

    INTEGER = True
    type: Literal["randint"] = "randint"
    min: int
    max: int


class QRandInt(Range):
    """An integer from ``[min, max]`` (both included) that is a multiple of ``q``."""

    INTEGER = True
    type: Literal["qrandint"] = "qrandint"
    min: int
    max: int
    q: int | None = Field(default=None, ge=1)

    @property
    def effective_q(self) -> int:
        return self.q if self.q is not None else 1


class LogRandInt(Range):
    """An integer from ``[min, max]`` (both included), drawn on a log scale."""

    INTEGER = True
    LOG = True
    type: Literal["lograndint"] = "lograndint"
    min: int
    max: int
    base: float


class QLogRandInt(Range):
    """A log-scaled integer from ``[min, max]`` that is a multiple of ``q``."""

    INTEGER = True
    LOG = True
    type: Literal["qlograndint"] = "qlograndint"
    min: int
    max: int
    base: float
    q: int | None = Field(default=None, ge=1)

    @property
    def effective_q(self) -> int:
        return self.q if self.q is not None else 1


# -- normals ------------------------------------------------------------------


class RandN(Distribution):
    """A float drawn from a normal distribution (unbounded)."""

    TRAITS = frozenset({"normal"})
    type: Literal["randn"] = "randn"
    mean: float = Field(default=0.0, ge=-_MAX_MAGNITUDE, le=_MAX_MAGNITUDE)
    sd: float = Field(default=1.0, le=_MAX_MAGNITUDE)

    @field_validator("sd")
    @classmethod
    def _positive_sd(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"sd must be > 0, got sd={value}")
        return value

    @property
    def effective_q(self) -> float | None:
        return None

    def rejects(self, value: Any) -> str:
        if not _is_number(value) or not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        q = self.effective_q
        if q is not None:
            steps = value / q
            if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
                return f"{value!r} is not a multiple of q={q}"
        return ""

    def extremes(self) -> list[Any]:
        return [self.mean]

    def describe(self) -> dict[str, Any]:
        shown = self._dump()
        if "q" in type(self).model_fields:
            shown["q"] = self.effective_q
            if self.q_defaulted:
                shown["q_defaulted"] = True
        return shown


class QRandN(RandN):
    """A normal float rounded to a multiple of ``q``."""

    type: Literal["qrandn"] = "qrandn"  # type: ignore[assignment]
    q: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _q_fits(self) -> QRandN:
        if not self.effective_q > 0:  # the default q of an sd too close to 0
            raise ValueError(f"q must be given: no default q (a power of ten) fits sd={self.sd}")
        if (abs(self.mean) + 10 * self.sd) / self.effective_q > _MAX_STEPS:
            raise ValueError(
                f"q={self.effective_q} is too small for mean={self.mean}, sd={self.sd}"
            )
        return self

    @property
    def effective_q(self) -> float:
        return self.q if self.q is not None else _power_of_ten_at_most(self.sd / 100)


# -- lists --------------------------------------------------------------------


class _Options(Distribution):
    options: list[Any] = Field(min_length=1)

    def rejects(self, value: Any) -> str:
        return (
            "" if value in self.options else f"{value!r} is not one of the options {self.options}"
        )

    def extremes(self) -> list[Any]:
        return list(self.options)


class Choice(_Options):
    """One of ``options``, each equally likely."""

    type: Literal["choice"] = "choice"

    # options may be any JSON value: model-based searchers see an index
    def internal_bounds(self) -> tuple[Any, ...]:
        return (0, len(self.options) - 1, int)

    def to_internal(self, value: Any) -> Any:
        return self.options.index(value)

    def from_internal(self, raw: Any) -> Any:
        return self.options[min(max(int(round(float(raw))), 0), len(self.options) - 1)]


class GridSearch(_Options):
    """Every one of ``options``, each in its own trial."""

    TRAITS = frozenset({"grid"})
    type: Literal["grid_search"] = "grid_search"

    @property
    def grid_points(self) -> int:
        return len(self.options)


SearchSpaceEntry = Annotated[
    Uniform
    | QUniform
    | LogUniform
    | QLogUniform
    | RandN
    | QRandN
    | RandInt
    | QRandInt
    | LogRandInt
    | QLogRandInt
    | Choice
    | GridSearch,
    Field(discriminator="type"),
]

DISTRIBUTION_TYPES: tuple[type[Distribution], ...] = (
    Uniform,
    QUniform,
    LogUniform,
    QLogUniform,
    RandN,
    QRandN,
    RandInt,
    QRandInt,
    LogRandInt,
    QLogRandInt,
    Choice,
    GridSearch,
)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(SearchSpaceEntry)


def parse_entry(data: dict[str, Any]) -> Distribution:
    """Build one entry from its JSON form (raises ``pydantic.ValidationError``)."""
    entry: Distribution = _ADAPTER.validate_python(data)
    return entry
