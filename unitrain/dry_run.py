"""``unitrain validate``: what a job would run, computed without running anything."""

from __future__ import annotations

from typing import Any

from unitrain.jobs import plan_job

__all__ = ["describe"]


def describe(params: dict[str, Any], plugin: str | None) -> dict[str, Any]:
    """A summary of the validated job: mode, plugin, dataset, checkpoint, hyperparameters."""
    plan = plan_job(params, plugin)
    summary: dict[str, Any] = {
        "valid": True,
        "job": plan.job,
        "mode": plan.mode,
        "plugin": plan.plugin,
        "dataset": {"id": plan.dataset.id, "name": plan.dataset.name, "uri": plan.dataset.uri},
        "checkpoint": plan.checkpoint_id,
        "hyperparameter": plan.hyperparameter,
        "notes": plan.notes,
    }
    return summary
