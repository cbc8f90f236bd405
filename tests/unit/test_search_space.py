"""Each distribution: its validation, its membership test, its default q, its numeric box."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from unitrain.job.search_space import (
    DISTRIBUTION_TYPES,
    Choice,
    GridSearch,
    LogRandInt,
    QLogRandInt,
    QLogUniform,
    QRandInt,
    QRandN,
    QUniform,
    RandN,
    parse_entry,
)

# -- validation and defaults -------------------------------------------------------


def test_q_defaults_are_documented_values():
    assert QUniform(name="lr", min=0.0001, max=0.01).effective_q == pytest.approx(1e-5)
    assert QLogUniform(name="lr", min=0.0001, max=0.01, base=10).effective_q == pytest.approx(1e-5)
    assert QLogUniform(name="lr", min=1.25, max=1.75, base=10).effective_q == pytest.approx(1e-3)
    assert QRandN(name="x", mean=0, sd=1).effective_q == pytest.approx(0.01)
    assert QRandInt(name="n", min=5, max=15).effective_q == 1


def test_explicit_q_wins():
    entry = QUniform(name="lr", min=0.0001, max=0.01, q=0.0001)
    assert entry.effective_q == 0.0001 and not entry.q_defaulted
    assert QUniform(name="lr", min=0, max=1).q_defaulted


def test_entry_is_chosen_by_type():
    assert (
        type(parse_entry({"name": "n", "type": "qrandint", "min": 1, "max": 9, "q": 2})) is QRandInt
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "quniform", "min": 0, "max": 1, "q": 0}, "greater than 0"),
        ({"type": "uniform", "min": 1, "max": 1}, "min must be less than max"),
        ({"type": "randint", "min": 3, "max": 2}, "min must be <= max"),
        ({"type": "loguniform", "min": 0, "max": 1, "base": 10}, "must be > 0 for a log scale"),
        ({"type": "loguniform", "min": 1, "max": 2, "base": 1}, "base must be greater than 1"),
        ({"type": "qrandint", "min": 6, "max": 9, "q": 5}, "no multiple of q=5"),
        ({"type": "randn", "mean": 0, "sd": 0}, "sd must be > 0"),
        ({"type": "choice", "options": []}, "at least 1 item"),
        ({"type": "quniform", "min": -1e308, "max": 1e308}, "within \\+-1e300"),
        ({"type": "quniform", "min": 0, "max": 1, "q": 5e-324}, "too small"),
        # no power of ten fits as the default q (found by the fuzz test)
        ({"type": "qloguniform", "min": 5e-324, "max": 1, "base": 10}, "q must be given"),
        ({"type": "quniform", "min": 0, "max": 5e-322}, "q must be given"),
        ({"type": "qrandn", "mean": 0, "sd": 5e-324}, "q must be given"),
        ({"type": "uniform", "min": 0, "max": float("inf")}, "finite number"),
    ],
)
def test_bad_entries_name_the_rule(entry, message):
    with pytest.raises(ValidationError, match=message):
        parse_entry({"name": "x", **entry})


def test_every_type_is_in_the_union():
    for kind in DISTRIBUTION_TYPES:
        name = kind.model_fields["type"].default
        assert name in {
            "uniform",
            "quniform",
            "loguniform",
            "qloguniform",
            "randn",
            "qrandn",
            "randint",
            "qrandint",
            "lograndint",
            "qlograndint",
            "choice",
            "grid_search",
        }
    assert len(DISTRIBUTION_TYPES) == 12


# -- membership ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "inside", "outside"),
    [
        ({"type": "qrandint", "min": 5, "max": 15, "q": 5}, [5, 10, 15], [7, 0, 20, 10.5]),
        ({"type": "randint", "min": 5, "max": 15}, [5, 15, 7.0], [4, 16, 7.5, "7", True]),
        ({"type": "quniform", "min": 0, "max": 1, "q": 0.25}, [0, 0.5, 1.0], [0.3, 1.25]),
        ({"type": "loguniform", "min": 0.01, "max": 1, "base": 10}, [0.01, 0.5], [0.001, 2]),
        ({"type": "qrandn", "mean": 0, "sd": 1, "q": 0.5}, [-1.5, 0, 3.0], [0.3, math.nan]),
        ({"type": "choice", "options": ["adam", 3]}, ["adam", 3], ["sgd", 4]),
    ],
)
def test_membership_includes_q_multiples(entry, inside, outside):
    parsed = parse_entry({"name": "x", **entry})
    for value in inside:
        assert parsed.contains(value), value
    for value in outside:
        assert not parsed.contains(value), value


def test_rejection_says_why():
    entry = parse_entry({"name": "n", "type": "qrandint", "min": 5, "max": 15, "q": 5})
    assert entry.rejects(7) == "7 is not a multiple of q=5"
    assert entry.rejects(20) == "20 is outside [min, max] = [5, 15]"


def test_traits_say_what_some_searchers_cannot_express():
    assert "grid" in GridSearch(name="g", options=[1]).traits
    assert "normal" in RandN(name="r").traits
    assert "quantised_log" in QLogUniform(name="q", min=1, max=10, base=10).traits
    # An integer with q = 1 is not quantised, whatever its type says.
    assert "quantised_log" not in QLogRandInt(name="q", min=1, max=10, base=2).traits
    assert "quantised_log" in QLogRandInt(name="q", min=2, max=10, base=2, q=2).traits
    assert Choice(name="c", options=[1]).traits == frozenset()


# -- the numeric box model-based searchers use ------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "uniform", "min": -2, "max": 3},
        {"type": "quniform", "min": 0, "max": 1, "q": 0.1},
        {"type": "loguniform", "min": 1e-4, "max": 1e-1, "base": 10},
        {"type": "randint", "min": 1, "max": 9},
        {"type": "qrandint", "min": 16, "max": 128, "q": 16},
        {"type": "lograndint", "min": 16, "max": 256, "base": 2},
        {"type": "choice", "options": ["a", {"b": 1}, 3]},
    ],
)
def test_internal_points_map_back_to_members(entry):
    parsed = parse_entry({"name": "x", **entry})
    bound = parsed.internal_bounds()
    low, high = bound[0], bound[1]
    for raw in np.linspace(low - 1, high + 1, 57):  # even outside the box
        assert parsed.contains(parsed.from_internal(raw)), raw
    for value in parsed.extremes():
        assert parsed.from_internal(parsed.to_internal(value)) == pytest.approx(value)


def test_normal_and_grid_have_no_box():
    with pytest.raises(NotImplementedError):
        RandN(name="r").internal_bounds()
    with pytest.raises(NotImplementedError):
        GridSearch(name="g", options=[1]).internal_bounds()
    assert LogRandInt(name="n", min=16, max=256, base=2).internal_bounds() == pytest.approx(
        (4.0, 8.0)
    )
