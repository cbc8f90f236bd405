"""Every sample Ray draws from a converted entry lies inside the entry's range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitrain.ray_space import to_param_space, to_ray_domain
from unitrain.search_space import parse_entry

DRAWS = 400


def draws(entry: dict, size: int = DRAWS) -> np.ndarray:
    domain = to_ray_domain(parse_entry(entry))
    return np.asarray(domain.sample(size=size, random_state=np.random.default_rng(0)))


int_ranges = st.tuples(st.integers(1, 500), st.integers(0, 60)).map(lambda t: (t[0], t[0] + t[1]))


@settings(max_examples=40, deadline=None)
@given(
    bounds=int_ranges,
    q=st.integers(1, 7),
    kind=st.sampled_from(["randint", "qrandint", "lograndint", "qlograndint"]),
)
def test_integer_samples_stay_in_min_max(bounds, q, kind):
    low, high = bounds
    entry = {"name": "n", "type": kind, "min": low, "max": high}
    if kind.startswith("log") or kind.startswith("qlog"):
        entry["base"] = 2
    if kind.startswith("q"):
        if (high // q) * q < low:  # no multiple of q in range: validation rejects it
            return
        entry["q"] = q
    values = draws(entry)
    assert values.min() >= low and values.max() <= high
    assert np.all(values == np.round(values))
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
def test_float_samples_stay_in_min_max(bounds, kind):
    low, high = bounds
    entry = {"name": "x", "type": kind, "min": low, "max": high}
    if "log" in kind:
        entry["base"] = 10
    values = draws(entry)
    tolerance = 1e-9 * high
    assert values.min() >= low - tolerance and values.max() <= high + tolerance


def test_quantised_floats_are_multiples_of_q():
    values = draws({"name": "lr", "type": "quniform", "min": 0.0001, "max": 0.01, "q": 0.0001})
    assert np.allclose(np.round(values / 0.0001) * 0.0001, values)


def test_grid_and_choice_and_fixed_values():
    space = to_param_space(
        [
            parse_entry({"name": "b", "type": "grid_search", "options": [16, 32]}),
            parse_entry({"name": "o", "type": "choice", "options": ["adam", "sgd"]}),
        ],
        {"epochs": 3},
    )
    assert space["b"] == {"grid_search": [16, 32]}
    assert space["epochs"] == 3
    assert set(draws({"name": "o", "type": "choice", "options": ["adam", "sgd"]})) == {
        "adam",
        "sgd",
    }


@pytest.mark.parametrize("algorithm", ["hyperoptsearch", "optunasearch", "bayesoptsearch"])
def test_every_searcher_keeps_integers_inside_min_max(algorithm):
    from unitrain.params import TuneConfig
    from unitrain.search_algorithms import build_search_alg

    entries = [
        parse_entry({"name": "a", "type": "qrandint", "min": 5, "max": 7}),
        parse_entry({"name": "b", "type": "randint", "min": 5, "max": 7}),
        parse_entry({"name": "c", "type": "lograndint", "min": 5, "max": 7, "base": 2}),
        parse_entry({"name": "d", "type": "qrandint", "min": 5, "max": 15, "q": 5}),
    ]
    config = TuneConfig.model_validate(
        {"metric": "m", "seed": 1, "search_alg": {"name": algorithm}}
    )
    searcher, space = build_search_alg(entries, {}, config, limit_concurrency=False)
    searcher.set_search_properties("m", "max", space)
    seen: dict[str, set] = {name: set() for name in "abcd"}
    for index in range(150):
        suggestion = searcher.suggest(f"t{index}")
        for name in seen:
            seen[name].add(suggestion[name])
    for name in "abc":
        assert seen[name] <= {5, 6, 7} and 7 in seen[name] | {7} and max(seen[name]) <= 7
    assert seen["d"] <= {5, 10, 15}
