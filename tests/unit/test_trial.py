import math

import pytest

from tasks.register_best_trial import best_trial
from tasks.tune_trials import TrialOutcome
from unitrain.trial import normalise_result


def test_return_values_are_normalised():
    assert normalise_result({"accuracy": 0.9, "loss": 0.1}, "accuracy") == {
        "accuracy": 0.9,
        "loss": 0.1,
    }
    assert normalise_result(0.92, "accuracy") == {"accuracy": 0.92}
    assert normalise_result(None, "accuracy") == {}
    with pytest.raises(TypeError, match="return a number or a dict"):
        normalise_result("high", "accuracy")


def trial(trial_id, status="TERMINATED", value=0.5, model="/m"):
    metrics = {} if value is None else {"accuracy": value}
    return TrialOutcome(trial_id, status, {}, metrics, "/logs", model, "")


def test_best_trial_follows_mode_and_skips_failures():
    trials = [
        trial("a", value=0.5),
        trial("b", value=0.9),
        trial("c", "ERROR", 0.99),
        trial("d", value=None),
        trial("e", value=0.95, model=""),
        trial("f", value=math.nan),
    ]
    assert best_trial(trials, "accuracy", "max").trial_id == "b"
    assert best_trial(trials, "accuracy", "min").trial_id == "a"
