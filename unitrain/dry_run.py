"""``unitrain validate``: what a job would run, computed without running anything.

For a tuning job it resolves the search space, counts the trials, draws the
first configurations with the job's seed (the same draws the run makes: the
searcher is built the same way), and states the resources one trial and the
whole job ask for. No cluster is started and nothing is written.
"""

from __future__ import annotations

import copy
from typing import Any

from unitrain.jobs import JobPlan, plan_job

__all__ = ["describe", "sample_configurations"]

SAMPLES_SHOWN = 5


def describe(params: dict[str, Any], plugin: str | None) -> dict[str, Any]:
    """A summary of the validated job."""
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
    if plan.params.is_tune:
        summary.update(_tuning(plan))
    return summary


def _tuning(plan: JobPlan) -> dict[str, Any]:
    params = plan.params
    config = params.tune_config
    assert config is not None and params.hyperparameters is not None
    per_trial = {"cpu": params.num_cpus or 1.0, "gpu": params.num_gpus or 0.0}
    concurrency = config.max_concurrent_trials
    space = []
    for entry in params.hyperparameters:
        resolved = entry.model_dump()
        if hasattr(entry, "effective_q"):
            resolved["q"] = entry.effective_q
            if entry.q_defaulted:
                resolved["q_defaulted"] = True
        if hasattr(entry, "bounds"):
            resolved["sampled_between"] = list(entry.bounds)
        space.append(resolved)
    return {
        "search_space": space,
        "trials": params.total_trials,
        "grid_points": params.grid_size,
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
            "total_trial_slots": {k: v * params.total_trials for k, v in per_trial.items()},
        },
    }


def sample_configurations(plan: JobPlan, count: int) -> list[dict[str, Any]]:
    """The first ``count`` configurations the job's searcher proposes, before any result."""
    from unitrain.search_algorithms import build_search_alg

    params = plan.params
    config = params.tune_config
    assert config is not None and params.hyperparameters is not None
    count = min(count, params.total_trials)
    searcher, param_space = build_search_alg(
        params.hyperparameters, plan.hyperparameter, config, limit_concurrency=False
    )
    if config.search_alg.name == "basicvariantgenerator":
        try:
            return _basic_variants(
                param_space, config, params.total_trials // params.grid_size, count
            )
        except ImportError:  # Ray moved its variant generator's internals
            return []
    searcher.set_search_properties(config.metric, config.mode, param_space)
    samples = []
    for index in range(count):
        suggestion = searcher.suggest(f"dry_run_{index:05d}")
        samples.append({**plan.hyperparameter, **(suggestion or {})})
    return samples


def _basic_variants(
    param_space: dict[str, Any], config: Any, repeats: int, count: int
) -> list[dict[str, Any]]:
    """Ray's BasicVariantGenerator draws, reproduced: same generator, same order."""
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
    from ray.tune.search.variant_generator import _get_preset_variants, generate_variants

    rng = _BackwardsCompatibleNumpyRng(config.seed)
    spec = {"config": param_space}
    points = copy.deepcopy(config.search_alg.points_to_evaluate or [])
    samples: list[dict[str, Any]] = []
    for _ in range(repeats):
        if points:
            variants = list(_get_preset_variants(spec, points.pop(0), False, rng))
        else:
            variants = list(generate_variants(spec, False, rng))
        samples.extend(resolved["config"] for _, resolved in variants)
        if len(samples) >= count:
            break
    return samples[:count]
