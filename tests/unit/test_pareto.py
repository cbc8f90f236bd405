"""Domination, Pareto fronts and hypervolume, on points whose answers are known."""

from __future__ import annotations

import pytest

from unitrain.job.objective import Objective
from unitrain.job.pareto import dominates, hypervolume, non_dominated_sort, pareto_front

# accuracy (max) and latency (min)
BOTH = (Objective("accuracy", "max"), Objective("latency", "min"))


def test_a_point_dominates_when_no_worse_anywhere_and_better_somewhere():
    assert dominates((0.9, 10), (0.8, 12), BOTH)
    assert dominates((0.9, 10), (0.9, 12), BOTH)
    assert not dominates((0.9, 10), (0.9, 10), BOTH)  # equal: neither
    assert not dominates((0.9, 12), (0.8, 10), BOTH)  # a trade-off: neither


def test_the_front_keeps_the_trade_offs_and_sorting_peels_front_after_front():
    points = [(0.9, 10), (0.8, 5), (0.85, 12), (0.7, 20), (0.95, 30), (0.8, 5)]
    assert pareto_front(points, BOTH) == [0, 1, 4, 5]  # (0.85, 12) and (0.7, 20) dominated
    assert non_dominated_sort(points, BOTH) == [[0, 1, 4, 5], [2], [3]]


def test_hypervolume_is_the_area_the_front_dominates():
    maximised = (Objective("a", "max"), Objective("b", "max"))
    # two rectangles from (0, 0): 2 x 1 and 1 x 2, overlapping in 1 x 1
    assert hypervolume([(2, 1), (1, 2)], maximised, (0, 0)) == pytest.approx(3.0)
    assert hypervolume([(2, 1), (1, 2), (0.5, 0.5)], maximised, (0, 0)) == pytest.approx(3.0)
    assert hypervolume([(-1, 5)], maximised, (0, 0)) == 0.0  # not beyond the reference
    # minimised objectives are mirrored
    minimised = (Objective("a", "min"), Objective("b", "min"))
    assert hypervolume([(0, 1), (1, 0)], minimised, (2, 2)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="two objectives"):
        hypervolume([(1, 2, 3)], (*maximised, maximised[0]), (0, 0, 0))
