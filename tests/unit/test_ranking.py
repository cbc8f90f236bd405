import math

import pytest

from unitrain.errors import UnitrainError
from unitrain.job.objective import Objective
from unitrain.tune.ranking import best_trial
from unitrain.tune.results import TrialOutcome


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
    assert best_trial(trials, Objective("accuracy", "max")).trial_id == "b"
    assert best_trial(trials, Objective("accuracy", "min")).trial_id == "a"


def test_ties_go_to_the_earliest_trial():
    tied = [trial("a", value=0.5), trial("b", value=0.5)]
    assert best_trial(tied, Objective("accuracy", "max")).trial_id == "a"


def test_no_scored_trial_is_a_clear_error_with_reasons_grouped():
    failed = [
        TrialOutcome(f"t{i}", "ERROR", {}, {}, "/logs", "", "", error="plugin 'p' failed: boom")
        for i in range(200)
    ]
    with pytest.raises(UnitrainError) as raised:
        best_trial([*failed, trial("b", value=None)], Objective("accuracy", "max"))
    message = str(raised.value)
    assert message.startswith("no trial finished with a model and a value for 'accuracy'")
    assert "200 x it failed: plugin 'p' failed: boom" in message
    assert "1 x it reported no finite 'accuracy'" in message
    assert message.count("boom") == 1
