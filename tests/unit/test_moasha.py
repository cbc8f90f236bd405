"""MOASHA's rungs: who is stopped, driven as Ray Tune drives a scheduler (one result at a time)."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler

from unitrain.job.objective import Objective
from unitrain.job.pareto import dominates, pareto_front
from unitrain.tune.moasha import MOASHA, promoted

BOTH_MIN = (Objective("f1", "min"), Objective("f2", "min"))


def zdt1(x: float, y: float) -> tuple[float, float]:
    g = 1 + 9 * y
    return x, g * (1 - math.sqrt(x / g))


def test_at_a_rung_the_dominated_go_first():
    recorded = {"a": (0.1, 0.9), "b": (0.9, 0.1), "c": (0.5, 0.95), "d": (0.6, 0.97)}
    # c and d are dominated by a; room for ceil(4 / 2) = 2: the front
    assert promoted(recorded, BOTH_MIN, 2) == {"a", "b"}
    # room for three: the best of the second front (c dominates d) joins
    assert promoted(recorded, BOTH_MIN, 4 / 3) == {"a", "b", "c"}


def test_inside_a_front_the_sparse_ends_go_first():
    recorded = {"a": (0.0, 1.0), "mid1": (0.45, 0.55), "mid2": (0.5, 0.5), "b": (1.0, 0.0)}
    assert promoted(recorded, BOTH_MIN, 2) == {"a", "b"}


def run_sequentially(scheduler: MOASHA, points: dict[str, tuple[float, float]], steps: int):
    """Each trial runs until stopped (one at a time); returns, per stopped trial, the rung
    it stopped at and what that rung held then."""
    stops = {}
    for trial_id, point in points.items():
        trial = SimpleNamespace(trial_id=trial_id)
        for iteration in range(1, steps + 1):
            share = iteration / steps
            values = {"f1": point[0] * (2 - share), "f2": point[1] * (2 - share)}
            result = {"training_iteration": iteration, **values}
            action = scheduler.on_trial_result(None, trial, result)
            if action == TrialScheduler.STOP:
                if iteration < steps:
                    rung = dict(scheduler.rungs[iteration])
                    stops[trial_id] = (iteration, rung)
                break
    return stops


@pytest.mark.parametrize("seed", range(5))
def test_a_stopped_trial_is_dominated_at_its_rung_unless_the_front_alone_overfills_it(seed):
    rng = random.Random(seed)
    points = {f"t{i:02d}": zdt1(rng.random(), rng.random()) for i in range(40)}
    scheduler = MOASHA([("f1", "min"), ("f2", "min")], max_t=9, grace_period=1, reduction_factor=3)
    stops = run_sequentially(scheduler, points, steps=9)

    assert stops, "nothing was stopped"
    dominated = 0
    for trial_id, (rung, held) in stops.items():
        mine = held[trial_id]
        others = [v for k, v in held.items() if k != trial_id]
        if any(dominates(other, mine, BOTH_MIN) for other in others):
            dominated += 1
            continue
        # a member of the rung's front stopped: only when the front is larger than the room
        room = math.ceil(len(held) / 3)
        front = pareto_front(list(held.values()), BOTH_MIN)
        assert len(front) > room, (trial_id, rung, len(held), len(front))
    assert dominated >= len(stops) // 2, (dominated, len(stops))


def test_no_trial_is_promoted_over_one_that_dominates_it():
    rng = random.Random(7)
    points = {f"t{i:02d}": zdt1(rng.random(), rng.random()) for i in range(60)}
    scheduler = MOASHA([("f1", "min"), ("f2", "min")], max_t=9, grace_period=1, reduction_factor=3)
    run_sequentially(scheduler, points, steps=9)
    for milestone, held in scheduler.rungs.items():
        if not held:
            continue
        chosen = promoted(held, BOTH_MIN, 3)
        for kept in chosen:
            for other in held:
                if other not in chosen:
                    assert not dominates(held[other], held[kept], BOTH_MIN), (milestone, kept)


def test_trials_at_max_t_are_stopped_and_maximised_objectives_work_too():
    scheduler = MOASHA([("accuracy", "max"), ("latency", "min")], max_t=4, grace_period=1)
    trial = SimpleNamespace(trial_id="a")
    result = {"training_iteration": 4, "accuracy": 0.9, "latency": 3.0}
    assert scheduler.on_trial_result(None, trial, result) == TrialScheduler.STOP
    maxmin = (Objective("accuracy", "max"), Objective("latency", "min"))
    recorded = {"good": (0.9, 1.0), "worse": (0.8, 2.0), "other": (0.95, 5.0)}
    assert promoted(recorded, maxmin, 2) == {"good", "other"}


def test_a_result_without_every_objective_is_let_through():
    scheduler = MOASHA([("f1", "min"), ("f2", "min")], max_t=9, grace_period=1)
    trial = SimpleNamespace(trial_id="a")
    result = {"training_iteration": 1, "f1": 0.5}
    assert scheduler.on_trial_result(None, trial, result) == TrialScheduler.CONTINUE
    assert not any(scheduler.rungs.values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_t": 4, "grace_period": 5}, "grace_period <= max_t"),
        ({"reduction_factor": 1}, "reduction_factor must be > 1"),
    ],
)
def test_options_out_of_range_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        MOASHA([("f1", "min"), ("f2", "min")], **options)
