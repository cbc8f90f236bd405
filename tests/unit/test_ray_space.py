"""The search space as Ray Tune domains: every draw Ray makes is a member of its entry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitrain.job.search_space import GridSearch, RandN, parse_entry
from unitrain.tune.ray_space import to_param_space, to_ray

DRAWS = 400


def draws(entry: dict, size: int = DRAWS) -> np.ndarray:
    domain = to_ray(parse_entry(entry))
    return np.asarray(domain.sample(size=size, random_state=np.random.default_rng(0)))


int_ranges = st.tuples(st.integers(1, 500), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=40, deadline=None)
@given(
    bounds=int_ranges,
    q=st.integers(1, 7),
    kind=st.sampled_from(["randint", "qrandint", "lograndint", "qlograndint"]),
)
def test_integer_draws_are_members(bounds, q, kind):
    low, high = bounds
    entry = {"name": "n", "type": kind, "min": low, "max": high}
    if "log" in kind:
        entry["base"] = 2
    if kind.startswith("q"):
        if (high // q) * q < low:  # no multiple of q in range: validation rejects it
            return
        entry["q"] = q
    parsed = parse_entry(entry)
    values = draws(entry)
    assert all(parsed.contains(int(v)) for v in values)
    assert values.min() >= low and values.max() <= high
    if kind.startswith("q"):
        assert np.all(values % q == 0)


@pytest.mark.parametrize("kind", ["randint", "qrandint", "lograndint", "qlograndint"])
def test_integer_max_is_included(kind):
    entry = {"name": "n", "type": kind, "min": 5, "max": 7}
    if "log" in kind:
        entry["base"] = 2
    assert set(draws(entry, 2000)) == {5, 6, 7}


float_ranges = st.tuples(
    st.floats(1e-4, 10, allow_nan=False), st.floats(1e-3, 100, allow_nan=False)
).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=40, deadline=None)
@given(
    bounds=float_ranges, kind=st.sampled_from(["uniform", "quniform", "loguniform", "qloguniform"])
)
def test_float_draws_stay_in_min_max(bounds, kind):
    low, high = bounds
    entry = {"name": "x", "type": kind, "min": low, "max": high}
    if "log" in kind:
        entry["base"] = 10
    values = draws(entry)
    tolerance = 1e-9 * high
    assert values.min() >= low - tolerance and values.max() <= high + tolerance


def test_quantised_float_draws_are_members():
    entry = {"name": "lr", "type": "quniform", "min": 0.0001, "max": 0.01, "q": 0.0001}
    parsed = parse_entry(entry)
    assert all(parsed.contains(float(v)) for v in draws(entry))


def test_grid_and_choice_markers():
    assert to_ray(GridSearch(name="b", options=[16, 32])) == {"grid_search": [16, 32]}
    assert set(draws({"name": "o", "type": "choice", "options": ["adam", "sgd"]})) == {
        "adam",
        "sgd",
    }


def test_normal_draws_follow_mean_and_sd():
    values = draws({"name": "w", "type": "randn", "mean": 3.0, "sd": 0.5}, 4000)
    assert abs(values.mean() - 3.0) < 0.05 and abs(values.std() - 0.5) < 0.05


def test_fixed_values_join_the_searched_entries():
    space = to_param_space([RandN(name="w")], {"epochs": 3})
    assert space["epochs"] == 3 and hasattr(space["w"], "sample")
