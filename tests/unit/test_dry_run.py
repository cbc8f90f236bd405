"""The dry run draws the configurations the run will draw, without starting anything."""

from __future__ import annotations

import pytest

from unitrain.planning import plan_job
from unitrain.tune.dry_run import describe, sample_configurations


def tuning(**config):
    return {
        "name": "t",
        "dataset": 1,
        "is_tune": True,
        "hyperparameter": {"work_s": 0.0},
        "hyperparameters": [
            {"name": "x", "type": "uniform", "min": 0, "max": 1},
            {"name": "label", "type": "choice", "options": ["a", "b"]},
        ],
        "tune_config": {"metric": "score", "num_samples": 8, **config},
    }


@pytest.mark.parametrize(
    "algorithm", ["basicvariantgenerator", "hyperoptsearch", "optunasearch", "bayesoptsearch"]
)
def test_a_seed_makes_the_samples_repeat_and_another_seed_changes_them(home, algorithm):
    def samples(seed):
        plan = plan_job(tuning(seed=seed, search_alg={"name": algorithm}), "synthetic")
        return sample_configurations(plan, 4)

    first, again, other = samples(3), samples(3), samples(4)
    assert len(first) == 4 and first == again and first != other
    for sample in first:
        assert 0 <= sample["x"] <= 1 and sample["label"] in ("a", "b")
        assert sample["work_s"] == 0.0  # fixed values are part of every configuration


def test_points_to_evaluate_come_first(home):
    plan = plan_job(
        tuning(seed=1, search_alg={"points_to_evaluate": [{"x": 0.25, "label": "b"}]}),
        "synthetic",
    )
    first = sample_configurations(plan, 2)[0]
    assert (first["x"], first["label"]) == (0.25, "b")


def test_a_grid_is_walked_once_per_repeat(home):
    params = tuning()
    params["hyperparameters"] = [{"name": "label", "type": "grid_search", "options": ["a", "b"]}]
    params["tune_config"]["num_samples"] = 4
    plan = plan_job(params, "synthetic")
    labels = [s["label"] for s in sample_configurations(plan, 10)]
    assert labels == ["a", "b", "a", "b"]


def test_describe_states_trials_resources_and_resolved_q(home):
    params = tuning(max_concurrent_trials=2)
    params["num_cpus"] = 0.5
    params["hyperparameters"][0] = {"name": "x", "type": "quniform", "min": 0, "max": 1}
    summary = describe(plan_job(params, "synthetic"))
    assert summary["trials"] == 8 and summary["grid_points"] == 1
    assert summary["search_space"][0]["q"] == 0.01 and summary["search_space"][0]["q_defaulted"]
    assert summary["resources"]["peak"] == {"cpu": 1.0, "gpu": 0.0}
    assert summary["resources"]["total_trial_slots"] == {"cpu": 4.0, "gpu": 0.0}
    assert "examples" in summary["sampled_configurations_note"]


def test_a_seeded_extension_shows_the_draws_it_will_make_not_the_earlier_rounds(home):
    import dataclasses

    from unitrain.job.records import EarlierTrial

    earlier = tuple(
        EarlierTrial("before", f"t{i}", {"x": 0.5, "label": "a"}, {"score": 0.5}, i + 1, "r", 0.0)
        for i in range(3)
    )
    plan = plan_job(tuning(seed=3), "synthetic")
    extended = dataclasses.replace(plan, earlier=earlier)
    # Random search draws from seed + the number of earlier trials: 3 + 3.
    assert sample_configurations(extended, 4) == sample_configurations(
        plan_job(tuning(seed=6), "synthetic"), 4
    )
    assert sample_configurations(extended, 4) != sample_configurations(plan, 4)
