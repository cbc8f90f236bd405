"""``unitrain validate``: what a job would run, computed without running anything.

For a tuning job it resolves the search space, counts the trials, draws the
first configurations with the job's seed (the same draws the run makes: the
searcher is built the same way), and states the resources one trial and the
whole job ask for. No cluster is started and nothing is written.
"""

from __future__ import annotations

import copy
from typing import Any

from unitrain._compat import (
    previews_random_draws,
    ray_preset_variants,
    ray_seeded_rng,
    ray_variants,
)
from unitrain.job import conditions
from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.tune.searchers import build_search_alg, search_seed

__all__ = ["describe", "sample_configurations"]

SAMPLES_SHOWN = 5


def describe(plan: JobPlan) -> dict[str, Any]:
    """A summary of a planned job."""
    summary: dict[str, Any] = {
        "valid": True,
        "job": plan.job,
        "mode": plan.mode,
        "plugin": plan.plugin,
        "dataset": {"id": plan.dataset.id, "name": plan.dataset.name, "uri": plan.dataset.uri},
        "checkpoint": plan.checkpoint_id,
        "hyperparameter": plan.hyperparameter,
        "notes": list(plan.notes),
    }
    if isinstance(plan, TuningPlan):
        summary.update(_tuning(plan))
    return summary


def _tuning(plan: TuningPlan) -> dict[str, Any]:
    config = plan.config
    per_trial = {"cpu": plan.num_cpus, "gpu": plan.num_gpus}
    concurrency = config.max_concurrent_trials
    conditional = conditions.is_conditional(plan.space)
    tree = {"search_tree": conditions.tree(plan.space)} if conditional else {}
    return {
        "search_space": [entry.describe() for entry in plan.space],
        **tree,
        "trials": plan.total_trials,
        "grid_points": plan.grid_size,
        "search_alg": config.search_alg.name,
        "scheduler": config.scheduler.name,
        "seed": config.seed,
        "sampled_configurations": sample_configurations(plan, SAMPLES_SHOWN),
        "sampled_configurations_note": (
            "the run draws these same configurations first"
            if config.seed is not None
            else "no tune_config.seed: these are examples; the run draws its own"
        ),
        "resources": {
            "per_trial": per_trial,
            "max_concurrent_trials": concurrency or "as many as the cluster fits",
            "peak": ({k: v * concurrency for k, v in per_trial.items()} if concurrency else None),
            "total_trial_slots": {k: v * plan.total_trials for k, v in per_trial.items()},
        },
    }


def sample_configurations(plan: TuningPlan, count: int) -> list[dict[str, Any]]:
    """The first ``count`` configurations the job's searcher proposes, before any result."""
    config = plan.config
    count = min(count, plan.total_trials)
    searcher, param_space = build_search_alg(
        plan.space, plan.hyperparameter, config, limit_concurrency=False, earlier=plan.earlier
    )
    if config.search_alg.name == "basicvariantgenerator":
        drawn = _basic_variants(param_space, plan, count) if previews_random_draws() else []
        return [plan.trial_config(sample) for sample in drawn]
    searcher.set_search_properties(config.objective.metric, config.objective.mode, param_space)
    samples = []
    for index in range(count):
        trial_id = f"dry_run_{index:05d}"
        suggestion = searcher.suggest(trial_id)
        if suggestion is None and index:  # it proposes one at a time: let the last one end
            searcher.on_trial_complete(f"dry_run_{index - 1:05d}", error=True)
            suggestion = searcher.suggest(trial_id)
        samples.append({**plan.hyperparameter, **plan.trial_config(suggestion or {})})
    return samples


def _basic_variants(param_space: dict[str, Any], plan: TuningPlan, count: int) -> list[dict]:
    """Ray's BasicVariantGenerator draws, reproduced: same generator, same order."""
    rng = ray_seeded_rng(search_seed(plan.config.seed, len(plan.earlier)))
    spec = {"config": param_space}
    points = copy.deepcopy(plan.config.search_alg.points_to_evaluate or [])
    samples: list[dict[str, Any]] = []
    # The generator walks the grid (or draws once) per repeat, points first.
    for _ in range(plan.total_trials // plan.grid_size):
        if points:
            variants = ray_preset_variants(spec, points.pop(0), rng)
        else:
            variants = ray_variants(spec, rng)
        samples.extend(resolved["config"] for _, resolved in variants)
        if len(samples) >= count:
            break
    return samples[:count]
