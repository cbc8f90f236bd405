"""The promotion gate: a job's new model takes an alias only if it beats the model holding it.

A job names the alias (``"promotion": {"alias": "champion"}``); serving
``models:/unitrain@champion`` then never serves a regression. This module is the
rule, with no I/O: the job's part (``promotion`` in its parameters), and the
comparison of two scores (:func:`compare`). The step that looks the holder up,
scores it and moves the alias is ``unitrain.tasks.promote_model``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Comparison", "Promotion", "PromotionConfig", "compare"]

#: MLflow's rule for alias names; ``best-`` is unitrain's own (``best-<job>``)
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class PromotionConfig(BaseModel):
    """``params.promotion`` as the job gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: str
    #: tuning: the search's metric and mode unless given
    metric: str | None = Field(default=None, min_length=1)
    mode: Literal["max", "min"] | None = None
    #: how much better the new model must be to take the alias
    min_delta: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @field_validator("alias")
    @classmethod
    def _mlflow_alias(cls, value: str) -> str:
        if not _ALIAS.match(value):
            raise ValueError(f"{value!r} is not an alias name: 1-255 letters, digits, '-' or '_'")
        if value.lower() == "latest" or re.match(r"^v\d+$", value, re.IGNORECASE):
            raise ValueError(f"{value!r} is reserved by MLflow ('latest' and v<number>)")
        if value.startswith("best-"):
            raise ValueError(f"{value!r}: aliases starting 'best-' are the jobs' best models")
        return value


@dataclass(frozen=True)
class Promotion:
    """A job's promotion with every part known: what the step compares, and how."""

    alias: str
    metric: str
    mode: Literal["max", "min"]
    min_delta: float = 0.0


_better = {"max": "higher", "min": "lower"}


@dataclass(frozen=True)
class Comparison:
    """The new model against the holder of the alias, on the same data."""

    promoted: bool
    #: one line for the log, the summary and the result
    message: str


def compare(
    promotion: Promotion,
    new: tuple[int, float | None],
    holder: tuple[int, float | None],
) -> Comparison:
    """Whether ``new`` (model ID, score) takes the alias from ``holder``.

    It must be better by more than ``min_delta``; a model with no score (or NaN) never
    takes it, and a holder with none loses it to any scored model.
    """
    (new_id, new_value), (old_id, old_value) = new, holder
    alias, metric = promotion.alias, promotion.metric
    if new_value is None or not math.isfinite(new_value):
        return Comparison(False, f"kept model {old_id} as {alias!r}: model {new_id} has no "
                          f"{metric}")  # fmt: skip
    if old_value is None or not math.isfinite(old_value):
        return Comparison(True, f"promoted model {new_id} ({new_value:.4g}) to {alias!r} over "
                          f"model {old_id} (no {metric})")  # fmt: skip
    gain = new_value - old_value if promotion.mode == "max" else old_value - new_value
    if gain > promotion.min_delta:
        return Comparison(
            True,
            f"promoted model {new_id} ({new_value:.4g}) to {alias!r} over model {old_id} "
            f"({old_value:.4g}) on {metric}",
        )
    needed = f" by more than {promotion.min_delta:g}" if promotion.min_delta else ""
    return Comparison(
        False,
        f"kept model {old_id} ({old_value:.4g}) over model {new_id} ({new_value:.4g}) as "
        f"{alias!r}: the new {metric} must be {_better[promotion.mode]}{needed}",
    )
