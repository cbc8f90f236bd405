"""Last step when the job names an alias: promote its new model only if it beats the holder.

The new model (a tuning job's best) and the model holding the alias are
compared on the same data: if the holder was scored on a dataset of the same
content (the SHA-256 its job recorded), by its recorded metrics; otherwise the
holder's plugin scores it on this job's dataset (``evaluate``), and a plugin
without one leaves the alias where it is, saying why. The rule is
``unitrain.job.promotion``.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

from prefect import get_run_logger, task

from unitrain.job.plan import JobPlan
from unitrain.job.promotion import Promotion, compare
from unitrain.job.records import Dataset, ModelRecord
from unitrain.plugin_loader import load_plugin
from unitrain.stores.mlflow_store import TAG
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore

__all__ = ["promote_model"]


@task(name="promote_model", retries=2, retry_delay_seconds=5)
def promote_model(
    plan: JobPlan, model_id: int, metrics: dict[str, float], dataset: Dataset, run_id: str
) -> dict[str, Any]:
    """Give ``model_id`` the job's alias if it beats the model holding it; say what happened.

    Returns the result's ``promotion``: the alias, the model holding it now,
    whether this job's model took it, and the message.
    """
    promotion = plan.promotion
    assert promotion is not None
    registry, runs = ModelRegistry(), RunStore()
    holder = registry.holder_of(promotion.alias)
    value = metrics.get(promotion.metric)
    if value is None or not math.isfinite(value):  # a misspelt metric never takes it
        promoted = False
        message = (
            f"model {model_id} has no {promotion.metric!r} (its metrics: "
            f"{', '.join(sorted(metrics)) or 'none'}): {promotion.alias!r} left as it is"
        )
    elif holder is None or holder == model_id:  # the first model, or a retried step
        registry.set_alias(promotion.alias, model_id)
        promoted, message = True, f"promoted model {model_id} ({_shown(value)}) to "
        message += f"{promotion.alias!r}, the first model to hold it"
    else:
        held = registry.get(holder)
        scores, refusal = _scores_on_this_data(held, model_id, value, promotion, dataset, registry)
        if refusal:
            promoted, message = False, refusal
        else:
            comparison = compare(promotion, (model_id, scores[0]), (holder, scores[1]))
            promoted, message = comparison.promoted, comparison.message
            if promoted:
                registry.set_alias(promotion.alias, model_id)
    runs.log(run_id, tags={TAG.PROMOTION: message})
    get_run_logger().info(message)
    return {
        "alias": promotion.alias,
        "model_id": model_id if promoted else holder,
        "promoted": promoted,
        "message": message,
    }


def _scores_on_this_data(
    held: ModelRecord,
    model_id: int,
    value: float | None,
    promotion: Promotion,
    dataset: Dataset,
    registry: ModelRegistry,
) -> tuple[tuple[float | None, float | None], str]:
    """The new model's and the holder's scores on this job's data, or why there are none.

    On a dataset of the content the holder was scored on, the recorded metrics
    compare; on another, the holder's plugin scores both models on this one.
    """
    recorded = ""
    if held.job_run:
        recorded = RunStore(registry.store).get(held.job_run).data.tags.get(TAG.DATASET_SHA256, "")
    if recorded == dataset.sha256:
        return (value, held.metrics.get(promotion.metric)), ""
    kept = f"kept model {held.model_id} as {promotion.alias!r} without comparing"
    evaluate = load_plugin(held.plugin or None).evaluate
    if evaluate is None:
        return (None, None), (
            f"{kept}: it was scored on dataset content {recorded[:12] or '(not recorded)'}, "
            f"this job's is {dataset.sha256[:12]}, and plugin {held.plugin!r} has no "
            "evaluate(model_path, dataset) to score it on this data"
        )
    scores: list[float | None] = []
    for scored in (model_id, held.model_id):
        with tempfile.TemporaryDirectory(prefix="unitrain-promotion-") as folder:
            found = evaluate(str(registry.download(scored, folder)), dataset)
        if not isinstance(found, dict) or promotion.metric not in found:
            return (None, None), (
                f"{kept}: plugin {held.plugin!r}'s evaluate() returned no {promotion.metric!r}"
            )
        scores.append(float(found[promotion.metric]))
    get_run_logger().info(
        "dataset content changed since model %d was scored (%s -> %s): both models scored "
        "on this job's data by %s's evaluate()",
        held.model_id,
        recorded[:12] or "(not recorded)",
        dataset.sha256[:12],
        held.plugin,
    )
    return (scores[0], scores[1]), ""


def _shown(value: float | None) -> str:
    return "no score" if value is None else f"{value:.4g}"
