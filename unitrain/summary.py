"""The markdown summary a finished job leaves in the Prefect UI."""

from __future__ import annotations

import logging
from typing import Any

from unitrain.jobs import JobPlan
from unitrain.trial_table import artifact_key

__all__ = ["publish_summary", "render_summary"]

log = logging.getLogger(__name__)


def render_summary(plan: JobPlan, result: dict[str, Any], *, metrics: dict[str, float]) -> str:
    lines = [
        f"# Job `{plan.job}`",
        "",
        f"- mode: {plan.mode}",
        f"- plugin: `{plan.plugin}`",
        f"- dataset: {plan.dataset.id} ({plan.dataset.name})",
        f"- checkpoint: {plan.checkpoint_id if plan.checkpoint_id is not None else 'none'}",
        f"- **model ID: {result.get('model_id')}**",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {key} | {value:.4g} |" for key, value in sorted(metrics.items())),
    ]
    return "\n".join(lines) + "\n"


def publish_summary(plan: JobPlan, result: dict[str, Any], *, metrics: dict[str, float]) -> None:
    from prefect.artifacts import create_markdown_artifact

    try:
        create_markdown_artifact(
            render_summary(plan, result, metrics=metrics),
            key=artifact_key("summary", plan.job),
            description=f"Result of job {plan.job}",
        )
    except Exception as error:  # a view, never a reason to fail the job
        log.warning("could not publish the summary: %s", error)
