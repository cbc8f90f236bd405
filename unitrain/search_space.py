"""The search space of a tuning job: one small model per distribution type.

Each entry validates its own rule when it is built, and every error names the
entry and the offending key. Conventions users can rely on:

- ``min``/``max`` and ``options`` (never ``lower``/``upper`` or ``values``).
- Integer types (``randint``, ``qrandint``, ``lograndint``, ``qlograndint``)
  include ``max``: ``{"type": "randint", "min": 5, "max": 15}`` can give 15.
- ``q`` is optional. Integers default to ``q = 1``; floats default to a power
  of ten that gives at least 100 steps over the range (for ``qloguniform``
  also no larger than ``min``; for ``qrandn``: ``sd / 100``, rounded down to a
  power of ten). The chosen default is logged when a job starts.
- ``base`` is required for the four log types and must be greater than 1.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

__all__ = [
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
    "parse_entry",
]


def _power_of_ten_at_most(value: float) -> float:
    return 10.0 ** math.floor(math.log10(value))


def _snap(low: float, high: float, q: float) -> tuple[float, float]:
    """The first and last multiples of ``q`` inside ``[low, high]``."""
    return math.ceil(low / q - 1e-9) * q, math.floor(high / q + 1e-9) * q


class _Quantised:
    """Quantised values are multiples of ``q`` that lie inside ``[min, max]``."""

    @property
    def bounds(self) -> tuple[Any, Any]:
        low, high = _snap(self.min, self.max, self.effective_q)  # type: ignore[attr-defined]
        if isinstance(self.effective_q, int):  # type: ignore[attr-defined]
            return int(round(low)), int(round(high))
        return low, high

    @model_validator(mode="after")
    def _has_a_multiple(self) -> Any:
        low, high = self.bounds
        if low > high:
            raise ValueError(
                f"no multiple of q={self.effective_q} lies between min={self.min} and "  # type: ignore[attr-defined]
                f"max={self.max}"  # type: ignore[attr-defined]
            )
        return self


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    def rejects(self, value: Any) -> str:
        """Why ``value`` could never be drawn from this entry ('' when it could)."""
        options = getattr(self, "options", None)
        if options is not None:
            return "" if value in options else f"{value!r} is not one of the options {options}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
        low, high = getattr(self, "min", None), getattr(self, "max", None)
        if low is not None and high is not None and not low <= value <= high:
            return f"{value!r} is outside [min, max] = [{low}, {high}]"
        if isinstance(low, int) and not float(value).is_integer():
            return f"expected an integer, got {value!r}"
        return ""

    @property
    def q_defaulted(self) -> bool:
        """True when the entry takes ``q`` and the user left it out."""
        return "q" in type(self).model_fields and getattr(self, "q", None) is None


class _FloatRange(_Entry):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> _FloatRange:
        if not self.min < self.max:
            raise ValueError(f"min must be less than max, got min={self.min}, max={self.max}")
        return self


class _LogMixin:
    @model_validator(mode="after")
    def _positive_bounds(self) -> Any:
        if self.min <= 0:  # type: ignore[attr-defined]
            raise ValueError(
                f"min and max must be > 0 for a log scale, got min={self.min}"  # type: ignore[attr-defined]
            )
        if self.base <= 1:  # type: ignore[attr-defined]
            raise ValueError(f"base must be greater than 1, got base={self.base}")  # type: ignore[attr-defined]
        return self


class _IntRange(_Entry):
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> _IntRange:
        if self.min > self.max:
            raise ValueError(f"min must be <= max, got min={self.min}, max={self.max}")
        return self


class Uniform(_FloatRange):
    """A float drawn uniformly from ``[min, max]``."""

    type: Literal["uniform"] = "uniform"


class QUniform(_Quantised, _FloatRange):
    """A uniform float rounded to a multiple of ``q``."""

    type: Literal["quniform"] = "quniform"
    q: float | None = Field(default=None, gt=0)

    @property
    def effective_q(self) -> float:
        return self.q if self.q is not None else _power_of_ten_at_most((self.max - self.min) / 100)


class LogUniform(_LogMixin, _FloatRange):
    """A float whose logarithm in ``base`` is uniform over ``[log min, log max]``."""

    type: Literal["loguniform"] = "loguniform"
    base: float


class QLogUniform(_Quantised, _LogMixin, _FloatRange):
    """A log-uniform float rounded to a multiple of ``q``."""

    type: Literal["qloguniform"] = "qloguniform"
    base: float
    q: float | None = Field(default=None, gt=0)

    @property
    def effective_q(self) -> float:
        if self.q is not None:
            return self.q
        return _power_of_ten_at_most(min(self.min, (self.max - self.min) / 100))


class RandN(_Entry):
    """A float drawn from a normal distribution."""

    type: Literal["randn"] = "randn"
    mean: float = 0.0
    sd: float = 1.0

    @field_validator("sd")
    @classmethod
    def _positive_sd(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"sd must be > 0, got sd={value}")
        return value


class QRandN(RandN):
    """A normal float rounded to a multiple of ``q``."""

    type: Literal["qrandn"] = "qrandn"  # type: ignore[assignment]
    q: float | None = Field(default=None, gt=0)

    @property
    def effective_q(self) -> float:
        return self.q if self.q is not None else _power_of_ten_at_most(self.sd / 100)


class RandInt(_IntRange):
    """An integer drawn uniformly from ``[min, max]``, both included."""

    type: Literal["randint"] = "randint"


class QRandInt(_Quantised, _IntRange):
    """An integer from ``[min, max]`` (both included) that is a multiple of ``q``."""

    type: Literal["qrandint"] = "qrandint"
    q: int | None = Field(default=None, ge=1)

    @property
    def effective_q(self) -> int:
        return self.q if self.q is not None else 1


class LogRandInt(_LogMixin, _IntRange):
    """An integer from ``[min, max]`` (both included), drawn on a log scale."""

    type: Literal["lograndint"] = "lograndint"
    base: float


class QLogRandInt(_Quantised, _LogMixin, _IntRange):
    """A log-scaled integer from ``[min, max]`` that is a multiple of ``q``."""

    type: Literal["qlograndint"] = "qlograndint"
    base: float
    q: int | None = Field(default=None, ge=1)

    @property
    def effective_q(self) -> int:
        return self.q if self.q is not None else 1


class Choice(_Entry):
    """One of ``options``, each equally likely."""

    type: Literal["choice"] = "choice"
    options: list[Any] = Field(min_length=1)


class GridSearch(_Entry):
    """Every one of ``options``, each in its own trial."""

    type: Literal["grid_search"] = "grid_search"
    options: list[Any] = Field(min_length=1)


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

_ADAPTER: TypeAdapter[Any] = TypeAdapter(SearchSpaceEntry)


def parse_entry(data: dict[str, Any]) -> Any:
    """Build one entry from its JSON form (raises ``pydantic.ValidationError``)."""
    return _ADAPTER.validate_python(data)
