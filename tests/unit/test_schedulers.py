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
    for name, row in SCHEDULERS.items():
        options = {"hyperparam_mutations": {"x": [1, 2]}} if row.requires_one_of else {}
        scheduler = build_scheduler(
            TuneConfig.model_validate(
                {"metric": "a", "scheduler": {"name": name, "options": options}}
            )
        )
        import ray.tune.schedulers

        assert isinstance(scheduler, getattr(ray.tune.schedulers, row.class_name))
