"""Schedulers by name, with their options checked before anything runs."""

from __future__ import annotations

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import TuneConfig
from unitrain.tune.schedulers import SCHEDULERS, build_scheduler


def test_scheduler_options_are_checked():
    good = TuneConfig.model_validate(
        {"metric": "a", "scheduler": {"name": "hyperband", "options": {"max_t": 100}}}
    )
    assert type(build_scheduler(good)).__name__ == "HyperBandScheduler"
    bad = TuneConfig.model_validate(
        {"metric": "a", "scheduler": {"name": "asha", "options": {"speed": 1}}}
    )
    with pytest.raises(
        JobValidationError, match=r"tune_config.scheduler.options: asha rejected \['speed'\]"
    ):
        build_scheduler(bad)
    pbt = TuneConfig.model_validate({"metric": "a", "scheduler": "pbt"})
    with pytest.raises(JobValidationError, match="pbt needs 'hyperparam_mutations'"):
        build_scheduler(pbt)
    for name in ("fifo", "median"):
        build_scheduler(TuneConfig.model_validate({"metric": "a", "scheduler": name}))


@pytest.mark.parametrize("name", ["asha", "hyperband"])
@pytest.mark.parametrize("max_t", [0, -5])
def test_out_of_range_options_are_messages_not_assertion_errors(name, max_t):
    bad = TuneConfig.model_validate(
        {"metric": "a", "scheduler": {"name": name, "options": {"max_t": max_t}}}
    )
    with pytest.raises(
        JobValidationError, match=rf"tune_config.scheduler.options: {name} rejected \['max_t'\]"
    ):
        build_scheduler(bad)


def test_every_row_builds_with_its_defaults():
    import importlib

    needed = {"hyperparam_mutations": {"x": [1, 2]}, "hyperparam_bounds": {"x": [0, 1]}}
    for name, row in SCHEDULERS.items():
        options = {key: needed[key] for key in row.requires_one_of[:1]}
        scheduler = build_scheduler(
            TuneConfig.model_validate(
                {"metric": "a", "scheduler": {"name": name, "options": options}}
            )
        )
        module = importlib.import_module(row.module)
        assert isinstance(scheduler, getattr(module, row.class_name))


def pbt(mutations):
    options = {"hyperparam_mutations": mutations}
    scheduler = {"name": "pbt", "options": options}
    return TuneConfig.model_validate({"metric": "a", "scheduler": scheduler})


def test_pbt_mutates_by_lists_or_by_the_job_s_own_search_space_entries():
    from ray.tune.search.sample import Float

    built = build_scheduler(
        pbt({"lr": {"type": "loguniform", "min": 1e-4, "max": 0.1, "base": 10}, "bs": [16, 32]})
    )
    mutations = built._hyperparam_mutations
    assert isinstance(mutations["lr"], Float) and mutations["bs"] == [16, 32]
    assert all(1e-4 <= mutations["lr"].sample() <= 0.1 for _ in range(50))
    with pytest.raises(JobValidationError, match=r"hyperparam_mutations\.lr: min must be less"):
        build_scheduler(pbt({"lr": {"type": "uniform", "min": 1, "max": 0}}))


def test_pb2_takes_linear_bounds_as_pairs_or_entries():
    def pb2(bounds):
        options = {"hyperparam_bounds": bounds}
        return TuneConfig.model_validate(
            {"metric": "a", "scheduler": {"name": "pb2", "options": options}}
        )

    built = build_scheduler(pb2({"x": {"type": "uniform", "min": 0, "max": 2}, "y": [1, 3]}))
    assert built._hyperparam_bounds == {"x": [0.0, 2.0], "y": [1, 3]}
    with pytest.raises(JobValidationError, match="pb2 searches a linear range"):
        build_scheduler(pb2({"x": {"type": "loguniform", "min": 0.1, "max": 1, "base": 10}}))
    with pytest.raises(JobValidationError, match="pb2 needs 'hyperparam_bounds'"):
        build_scheduler(TuneConfig.model_validate({"metric": "a", "scheduler": "pb2"}))


def test_trials_keep_two_checkpoints_and_four_under_pbt():
    assert TuneConfig.model_validate({"metric": "a"}).checkpoints_kept == 2
    assert pbt({"x": [1, 2]}).checkpoints_kept == 4
    given = TuneConfig.model_validate({"metric": "a", "keep_checkpoints": 7})
    assert given.checkpoints_kept == 7


def test_every_scheduler_name_a_job_may_give_has_a_row():
    from unitrain.job.algorithms import SCHEDULERS as NAMES

    assert tuple(SCHEDULERS) == NAMES


@pytest.mark.parametrize("mutations", [True, None, {"lr": 0.1}, {"lr": []}, []])
def test_pbt_mutations_of_another_shape_are_refused_naming_the_option(mutations):
    with pytest.raises(JobValidationError, match="hyperparam_mutations: must map each"):
        build_scheduler(pbt(mutations))
