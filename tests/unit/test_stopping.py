import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import validate_params
from unitrain.tune.stopping import BudgetStopper, SearchBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def budget(**rules) -> tuple[SearchBudget, Clock]:
    clock = Clock()
    made = SearchBudget(
        metric="score", mode="max", cpus_per_trial=2, gpus_per_trial=0.5, clock=clock, **rules
    )
    return made, clock


def test_nothing_stops_a_search_without_rules():
    account, clock = budget()
    for index in range(100):
        account.trial_started(str(index))
        clock.now += 3600
        account.trial_ended(str(index), 0.5)
    assert not account.exhausted()
    assert account.used() == {"cpu_hours": 200.0, "gpu_hours": 50.0}


def test_a_target_stops_the_search_once_a_trial_reaches_it():
    account, _ = budget(target=0.9)
    account.trial_ended("a", 0.8)
    assert not account.exhausted()
    account.trial_ended("b", 0.9)
    assert account.exhausted() and account.reason == "score reached the target 0.9 (0.9)"


def test_minimising_reaches_a_target_from_above():
    account = SearchBudget(
        metric="loss", mode="min", cpus_per_trial=1, gpus_per_trial=0, target=0.1
    )
    account.trial_ended("a", 0.2)
    assert not account.exhausted()
    account.trial_ended("b", 0.05)
    assert account.exhausted()


def test_patience_counts_trials_in_a_row_without_progress():
    account, _ = budget(patience=3)
    for value in (0.5, 0.4, 0.6, 0.1, 0.2):  # 0.6 resets the count
        account.trial_ended("t", value)
    assert not account.exhausted()
    account.trial_ended("t", 0.3)
    assert account.exhausted()
    assert account.reason == "no better score in the last 3 trials (patience 3)"


def test_compute_counts_running_trials_and_stops_when_spent():
    account, clock = budget(cpu_hours=1.0)
    account.trial_started("a")
    clock.now = 1200  # 2 CPUs x 20 min = 0.67 CPU-hours
    assert not account.exhausted()
    clock.now = 1800
    assert account.exhausted()
    assert account.reason.startswith("the compute budget was spent (1 of 1 cpu_hours)")


def test_the_stopper_reads_the_live_account_even_from_a_copy():
    import copy
    import pickle

    account, _ = budget(target=0.5)
    stopper = BudgetStopper(account)
    copied = copy.deepcopy(stopper)
    assert not stopper.stop_all() and not copied.stop_all()
    account.trial_ended("a", 0.7)
    assert stopper.stop_all() and copied.stop_all()
    assert stopper("a", {"score": 0.7}) is False  # trials are stopped together
    restored = pickle.loads(pickle.dumps(stopper))
    stopper.release()
    assert not restored.stop_all()  # a finished run's stopper stops nothing


TUNING = {
    "name": "t",
    "dataset": 1,
    "is_tune": True,
    "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
}


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        ({"patience": 0}, r"tune_config.stop.patience: Input should be greater than or equal to 1"),
        ({"cpu_hours": -1}, r"tune_config.stop.cpu_hours: Input should be greater than 0"),
        ({"target": float("inf")}, r"tune_config.stop.target: Input should be a finite number"),
        ({"after": 3}, r"tune_config.stop.after: unknown field"),
    ],
)
def test_stopping_rules_are_validated(stop, message):
    with pytest.raises(JobValidationError, match=message):
        validate_params({**TUNING, "tune_config": {"metric": "score", "stop": stop}})


def test_stopping_rules_are_accepted():
    params = validate_params(
        {**TUNING, "tune_config": {"metric": "score", "stop": {"target": 0.9, "patience": 5}}}
    )
    assert params.tune_config is not None
    assert params.tune_config.stop.target == 0.9 and params.tune_config.stop.any
