"""Every validation rule of SPEC sections 1-3, read through the message a user sees."""

from __future__ import annotations

import copy

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import parse_job, validate_params

TRAINING = {
    "name": "my_model",
    "dataset": 123,
    "checkpoint": None,
    "is_tune": False,
    "hyperparameter": {
        "epochs": 100,
        "batch_size": 32,
        "learning_rate": 0.001,
        "optimizer": "adam",
    },
}
TUNING = {
    "name": "my_tuning_job",
    "dataset": 123,
    "checkpoint": None,
    "is_tune": True,
    "hyperparameters": [
        {"name": "batch_size", "type": "choice", "options": [16, 32, 64]},
        {"name": "learning_rate", "type": "loguniform", "min": 0.0001, "max": 0.01, "base": 10},
        {"name": "optimizer", "type": "choice", "options": ["adam", "sgd"]},
    ],
    "tune_config": {
        "mode": "max",
        "metric": "accuracy",
        "num_samples": 10,
        "max_concurrent_trials": 2,
    },
}


def with_(base: dict, **changes) -> dict:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def rejected(params: dict, match: str) -> None:
    with pytest.raises(JobValidationError, match=match):
        validate_params(params)


def test_seed_examples_are_valid():
    assert validate_params(TRAINING).is_tune is False
    tuned = validate_params(TUNING)
    assert tuned.is_tune and tuned.total_trials == 10


def test_training_requires_hyperparameter():
    rejected(with_(TRAINING, hyperparameter=...), "hyperparameter is required when is_tune=False")


def test_tuning_requires_hyperparameters_and_tune_config():
    rejected(with_(TUNING, hyperparameters=...), "hyperparameters is required when is_tune=True")
    rejected(with_(TUNING, tune_config=...), "tune_config is required when is_tune=True")


def test_list_as_hyperparameter_explains_the_modes():
    rejected(
        with_(TRAINING, hyperparameter=[{"name": "lr", "type": "uniform", "min": 0, "max": 1}]),
        r"hyperparameter: got a list; training mode \(is_tune=false\) expects a dict",
    )


def test_dict_as_hyperparameters_explains_the_modes():
    rejected(
        with_(TUNING, hyperparameters={"lr": 0.1}),
        r"hyperparameters: got a dict; tuning mode \(is_tune=true\) expects a list",
    )


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_is_rejected(name):
    rejected(with_(TRAINING, name=name), "name: must not be blank")


def test_unknown_field_is_named():
    rejected(with_(TRAINING, epochs=3), "epochs: unknown field")


def test_a_key_with_control_characters_is_shown_escaped_on_one_line():
    with pytest.raises(JobValidationError) as caught:
        validate_params({**TRAINING, "\r": None, "a\u202eb": 1})
    for line in caught.value.problems:
        assert "\n" not in line and "\r" not in line and "\u202e" not in line
    assert any("\\r: unknown field" in line for line in caught.value.problems)


def test_stored_name_is_encoded():
    assert validate_params(with_(TRAINING, name="experiment:v1,batch:32")).stored_name == (
        "experiment%3Av1%2Cbatch%3A32"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "lr", "type": "gaussian", "mean": 0}, r"hyperparameters\[0\] \('lr'\).*gaussian"),
        (
            {"name": "lr", "type": "uniform", "min": 1, "max": 0.1},
            r"\('lr'\): min must be less than max, got min=1.0, max=0.1",
        ),
        ({"name": "n", "type": "randint", "min": 9, "max": 3}, r"\('n'\): min must be <= max"),
        (
            {"name": "o", "type": "choice", "options": []},
            r"\('o'\).options: List should have at least 1",
        ),
        ({"name": "g", "type": "grid_search", "options": []}, r"\('g'\).options"),
        ({"name": "z", "type": "randn", "mean": 0, "sd": -1}, r"\('z'\).sd: sd must be > 0"),
        (
            {"name": "lr", "type": "loguniform", "min": 0.001, "max": 0.1},
            r"\('lr'\).base: Field required",
        ),
        (
            {"name": "lr", "type": "loguniform", "min": 0.001, "max": 0.1, "base": 1},
            r"base must be greater than 1",
        ),
        (
            {"name": "lr", "type": "loguniform", "min": 0, "max": 0.1, "base": 10},
            r"must be > 0 for a log scale",
        ),
        (
            {"name": "u", "type": "lograndint", "min": -4, "max": 64, "base": 2},
            r"must be > 0 for a log scale",
        ),
        ({"name": "lr", "type": "uniform", "lower": 0, "upper": 1}, r"lower: unknown field"),
        ({"name": "o", "type": "choice", "values": [1]}, r"values: unknown field"),
    ],
)
def test_bad_search_space_entries_name_the_entry(entry, message):
    rejected(with_(TUNING, hyperparameters=[entry]), message)


def test_duplicate_entry_names_are_rejected():
    entry = {"name": "lr", "type": "uniform", "min": 0, "max": 1}
    rejected(with_(TUNING, hyperparameters=[entry, entry]), "duplicate name 'lr'")


def test_unknown_search_algorithm_lists_supported_names():
    config = {**TUNING["tune_config"], "search_alg": {"name": "skopt"}}
    rejected(
        with_(TUNING, tune_config=config),
        "unknown search algorithm 'skopt'; supported: basicvariantgenerator, hyperoptsearch, "
        "bayesoptsearch, axsearch, optunasearch, auto",
    )


def test_unknown_scheduler_lists_supported_names():
    config = {**TUNING["tune_config"], "scheduler": {"name": "fancy"}}
    rejected(
        with_(TUNING, tune_config=config), "unknown scheduler 'fancy'; supported: fifo, hyperband"
    )


def test_points_to_evaluate_must_use_searched_names():
    config = {
        **TUNING["tune_config"],
        "search_alg": {
            "name": "hyperoptsearch",
            "points_to_evaluate": [{"learning_rate": 0.001, "momentum": 0.9}],
        },
    }
    rejected(with_(TUNING, tune_config=config), r"points_to_evaluate\[0\]: \['momentum'\]")


def test_grid_counts_as_trials_not_multiplier():
    grid = [
        {"name": "batch_size", "type": "grid_search", "options": [16, 32, 64]},
        {"name": "learning_rate", "type": "grid_search", "options": [0.001, 0.0001]},
        {"name": "optimizer", "type": "grid_search", "options": ["adam", "sgd"]},
    ]
    config = {"mode": "max", "metric": "validation_accuracy", "num_samples": 12}
    params = validate_params(with_(TUNING, hyperparameters=grid, tune_config=config))
    assert params.grid_size == 12 and params.total_trials == 12
    rejected(
        with_(TUNING, hyperparameters=grid, tune_config={**config, "num_samples": 10}),
        "the grid has 12 points, so num_samples must be a multiple of 12",
    )


def test_checkpoint_forms():
    assert validate_params(with_(TRAINING, checkpoint=7)).checkpoint == 7
    assert validate_params(with_(TRAINING, checkpoint="7")).checkpoint == 7
    assert validate_params(with_(TRAINING, checkpoint="latest")).checkpoint == "latest"
    assert validate_params(with_(TRAINING, checkpoint="latest:other")).checkpoint == "latest:other"
    rejected(with_(TRAINING, checkpoint=0), "checkpoint: model IDs start at 1")
    rejected(with_(TRAINING, checkpoint="newest"), "checkpoint: must be a model ID, 'latest'")


def test_mode_and_metric_are_checked():
    rejected(with_(TUNING, tune_config={"metric": "accuracy", "mode": "up"}), r"tune_config.mode")
    rejected(with_(TUNING, tune_config={"mode": "max"}), r"tune_config.metric: Field required")


def test_resources_must_be_positive():
    rejected(with_(TUNING, num_cpus=0), "num_cpus")
    rejected(with_(TUNING, num_gpus=-1), "num_gpus")
    assert validate_params(with_(TUNING, num_gpus=0.5)).num_gpus == 0.5


def test_envelope_and_bare_params_are_both_accepted():
    assert parse_job({"action": "train", "params": TRAINING}).params.name == "my_model"
    assert parse_job(TRAINING).params.name == "my_model"
    with pytest.raises(JobValidationError, match="action: must be 'train'"):
        parse_job({"action": "predict", "params": TRAINING})


def test_deprecated_tune_action_runs_as_train_with_is_tune():
    old = with_(TUNING, is_tune=..., hyperparameters=...)
    old["hyperparameter"] = TUNING["hyperparameters"]
    with pytest.warns(DeprecationWarning, match='action "tune" is deprecated'):
        job = parse_job({"action": "tune", "params": old})
    assert job.params.is_tune
    assert job.params == validate_params(TUNING)
    assert job.notes and "deprecated" in job.notes[0]


def test_every_problem_is_reported_once():
    with pytest.raises(JobValidationError) as caught:
        validate_params({"name": "x", "dataset": 1, "hyperparameter": {}, "a": 1, "b": 2})
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_cpus": 1e-9}, "num_cpus: Ray counts resources in steps of 0.0001, got 1e-09"),
        ({"num_gpus": 0.33333}, "num_gpus: Ray counts resources in steps of 0.0001"),
        ({"num_cpus": 1e30}, "num_cpus: Input should be less than or equal to 1000000"),
    ],
)
def test_resources_that_ray_would_refuse_are_refused_first(change, message):
    with pytest.raises(JobValidationError, match=message):
        validate_params({**copy.deepcopy(TUNING), **change})
    assert validate_params({**copy.deepcopy(TUNING), "num_cpus": 0.5, "num_gpus": 0.25})


def test_trial_counts_have_a_cap(monkeypatch):
    job = copy.deepcopy(TUNING)
    job["tune_config"]["num_samples"] = 50_000
    with pytest.raises(JobValidationError, match="at most 10000 trials per job"):
        validate_params(job)
    job["tune_config"]["num_samples"] = 1e30
    with pytest.raises(JobValidationError, match="^invalid job: tune_config.num_samples: "):
        validate_params(job)
    monkeypatch.setenv("UNITRAIN_MAX_TRIALS", "20")
    grid = copy.deepcopy(TUNING)
    grid["hyperparameters"] = [
        {"name": "a", "type": "grid_search", "options": list(range(5))},
        {"name": "b", "type": "grid_search", "options": list(range(5))},
    ]
    grid["tune_config"]["num_samples"] = None
    with pytest.raises(JobValidationError, match="the grid has 25 points; at most 20 trials"):
        validate_params(grid)


def test_keep_models_is_a_positive_count():
    job = copy.deepcopy(TUNING)
    job["tune_config"]["keep_models"] = 0
    rejected(job, r"tune_config.keep_models: Input should be greater than or equal to 1")
    job["tune_config"]["keep_models"] = 3
    assert validate_params(job).tune_config.keep_models == 3
