"""The parallel-coordinates axes: each on its own scale, with values or names at its ticks."""

from __future__ import annotations

import pytest

from unitrain.job.search_space import Choice, LogUniform, Uniform
from unitrain.ui.plot_axes import ABSENT, Axis


def test_a_log_scaled_hyperparameter_gets_a_log_axis_with_its_values():
    entry = LogUniform(name="lr", type="loguniform", min=1e-4, max=1e-1, base=10)
    axis = Axis.of("lr", [1e-4, 1e-3, 1e-1], entry)
    assert axis.log
    assert axis.position(1e-3) == pytest.approx(1 / 3)  # a third of the way, in decades
    labels = [label for _, label in axis.ticks()]
    assert labels == ["0.0001", "0.000562", "0.00316", "0.0178", "0.1"]


def test_a_linear_hyperparameter_gets_values_from_its_range():
    axis = Axis.of("x", [0.0, 0.5, 2.0], Uniform(name="x", type="uniform", min=0, max=2))
    assert not axis.log and axis.position(0.5) == 0.25
    assert axis.ticks()[0] == (0.0, "0") and axis.ticks()[-1] == (1.0, "2")


def test_a_choice_is_labelled_with_its_options_in_order_even_when_they_are_numbers():
    entry = Choice(name="batch", type="choice", options=[32, 64, 128])
    axis = Axis.of("batch", [128, 32], entry)
    assert axis.categories == ("32", "64", "128")
    assert [axis.position(v) for v in (32, 64, 128)] == [0.0, 0.5, 1.0]
    entry = Choice(name="opt", type="choice", options=["adam", "sgd"])
    names = Axis.of("opt", ["sgd", "adam"], entry)
    assert names.ticks() == [(0.0, "adam"), (1.0, "sgd")]


def test_a_trial_without_the_value_is_drawn_at_the_foot():
    axis = Axis.of("momentum", [0.1, None, 0.9])
    assert axis.position(None) == ABSENT < 0 <= axis.position(0.1)
