"""The promotion rule: which model holds the alias, and the job's ``promotion`` checked."""

from __future__ import annotations

import math

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import validate_params
from unitrain.job.promotion import Promotion, compare

ACCURACY = Promotion("champion", "accuracy", "max")
LOSS = Promotion("champion", "loss", "min", min_delta=0.01)


def test_a_better_model_takes_the_alias_and_a_worse_or_equal_one_does_not():
    assert compare(ACCURACY, (13, 0.99), (12, 0.98)).promoted
    kept = compare(ACCURACY, (13, 0.975), (12, 0.981))
    assert not kept.promoted
    assert kept.message.startswith("kept model 12 (0.981) over model 13 (0.975) as 'champion'")
    assert not compare(ACCURACY, (13, 0.98), (12, 0.98)).promoted


def test_min_delta_and_min_mode():
    assert compare(LOSS, (2, 0.10), (1, 0.12)).promoted
    assert not compare(LOSS, (2, 0.115), (1, 0.12)).promoted  # better by less than 0.01
    assert not compare(LOSS, (2, 0.2), (1, 0.12)).promoted


def test_a_model_without_a_score_never_takes_it_and_a_holder_without_one_loses_it():
    assert not compare(ACCURACY, (2, None), (1, 0.5)).promoted
    assert not compare(ACCURACY, (2, math.nan), (1, 0.5)).promoted
    assert compare(ACCURACY, (2, 0.1), (1, None)).promoted


BASE = {"name": "job", "dataset": 1, "hyperparameter": {}}
SEARCH = {
    "name": "job",
    "dataset": 1,
    "is_tune": True,
    "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
    "tune_config": {"metric": "score", "mode": "min"},
}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (BASE | {"promotion": {"alias": "champion"}}, "promotion: a training job must give"),
        (BASE | {"promotion": {"alias": "v3", "metric": "m", "mode": "max"}}, "reserved"),
        (BASE | {"promotion": {"alias": "a b", "metric": "m", "mode": "max"}}, "not an alias"),
        (BASE | {"promotion": {"alias": "best-x", "metric": "m", "mode": "max"}}, "best-"),
        (BASE | {"promotion": {"alias": "c", "metric": "m", "mode": "up"}}, "promotion.mode"),
        (SEARCH | {"promotion": {"alias": "c", "metric": "cost"}}, "promotion.mode: required"),
        (SEARCH | {"promotion": {"alias": "c", "other": 1}}, "promotion.other: unknown"),
    ],
)
def test_a_bad_promotion_is_refused_naming_the_field(params, problem):
    with pytest.raises(JobValidationError, match="promotion") as error:
        validate_params(params)
    assert problem in str(error.value)


def test_a_search_promotes_by_its_own_metric_and_mode_unless_told(home):
    from unitrain.planning import plan_job

    plan = plan_job(SEARCH | {"promotion": {"alias": "c"}}, "synthetic")
    assert plan.promotion == Promotion("c", "score", "min")
    plan = plan_job(
        SEARCH | {"promotion": {"alias": "c", "metric": "cost", "mode": "max", "min_delta": 1}},
        "synthetic",
    )
    assert plan.promotion == Promotion("c", "cost", "max", 1.0)
