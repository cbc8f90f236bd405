"""A study's rules: configurations from MLflow's strings, and the same-search check."""

from __future__ import annotations

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import validate_params
from unitrain.job.search_space import parse_entry
from unitrain.job.study import check_same_search, config_from_params, job_file

SPACE = [
    {"name": "lr", "type": "loguniform", "min": 0.0001, "max": 0.1, "base": 10},
    {"name": "layers", "type": "randint", "min": 1, "max": 5},
    {"name": "act", "type": "choice", "options": ["relu", "1", 1, True, [2, 3]]},
]


def params(space=SPACE, **tune):
    return validate_params(
        {
            "name": "now",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": space,
            "tune_config": {"metric": "score", "mode": "max", "extend": "before", **tune},
        }
    )


def test_values_come_back_with_their_types_and_choices_by_what_mlflow_stored():
    entries = [parse_entry(e) for e in SPACE]
    logged = {"lr": "0.003", "layers": "4", "act": "1", "other": "x"}
    assert config_from_params(entries, logged) == {"lr": 0.003, "layers": 4, "act": "1"}
    assert config_from_params(entries, {**logged, "act": "[2, 3]"})["act"] == [2, 3]
    assert config_from_params(entries, {**logged, "act": "true"})["act"] is True
    assert config_from_params(entries, {**logged, "act": "relu"})["act"] == "relu"


@pytest.mark.parametrize(
    "logged",
    [
        {"lr": "0.5", "layers": "4", "act": "relu"},  # outside the range
        {"lr": "0.003", "layers": "4", "act": "gelu"},  # not an option
        {"lr": "0.003", "act": "relu"},  # missing
        {"lr": "fast", "layers": "4", "act": "relu"},  # not a number
    ],
)
def test_a_trial_that_does_not_fit_the_space_is_left_out(logged):
    assert config_from_params([parse_entry(e) for e in SPACE], logged) is None


def earlier(space=SPACE, plugin="synthetic", **tune):
    return job_file(params(space, **tune), plugin)


def test_the_same_search_passes():
    check_same_search(params(), "synthetic", earlier(), "before")


def test_each_differing_entry_is_named():
    other = [
        {**SPACE[0], "max": 0.01},
        SPACE[1],
        {"name": "dropout", "type": "uniform", "min": 0, "max": 0.5},
    ]
    with pytest.raises(JobValidationError) as error:
        check_same_search(params(), "synthetic", earlier(other), "before")
    message = str(error.value)
    assert message.startswith("invalid job: hyperparameters: job 'before' searched another space")
    assert "'act' is only in this job" in message
    assert "'dropout' is only in job 'before'" in message
    assert "'lr' is " in message and '"max": 0.1' in message and '"max": 0.01' in message
    assert "'layers'" not in message


@pytest.mark.parametrize(
    ("earlier_job", "field"),
    [
        (earlier(mode="min"), "tune_config.mode"),
        (earlier(metric="loss"), "tune_config.metric"),
        (earlier(plugin="digits_mlp"), "tune_config.extend"),
    ],
)
def test_metric_mode_and_plugin_must_match(earlier_job, field):
    with pytest.raises(JobValidationError, match=f"^invalid job: {field}: job 'before'"):
        check_same_search(params(), "synthetic", earlier_job, "before")


def test_extend_is_a_job_name():
    with pytest.raises(JobValidationError, match="tune_config.extend"):
        params(extend=" ")
