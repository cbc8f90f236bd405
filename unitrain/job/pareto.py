"""Several objectives at once: which trials dominate which, the Pareto front, its hypervolume.

A trial dominates another when it is at least as good on every objective and
better on one. The Pareto front is the set of trials no other trial dominates;
non-dominated sorting peels the trials into such fronts, one after another
(the first front, then the front of what is left, ...), which is how MOASHA
ranks the trials at a rung. The hypervolume of a front (the area, in two
dimensions, that it dominates up to a reference point) says how good a whole
front is: larger is better.
"""

from __future__ import annotations

from collections.abc import Sequence

from unitrain.job.objective import Objective

__all__ = ["dominates", "hypervolume", "non_dominated_sort", "pareto_front"]

Point = Sequence[float]


def dominates(a: Point, b: Point, objectives: Sequence[Objective]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective, and better on one."""
    at_least = all(o.at_least_as_good(x, y) for o, x, y in zip(objectives, a, b, strict=True))
    return at_least and any(o.better(x, y) for o, x, y in zip(objectives, a, b, strict=True))


def pareto_front(points: Sequence[Point], objectives: Sequence[Objective]) -> list[int]:
    """The indices of the points that no other point dominates, in their order."""
    return [
        i
        for i, point in enumerate(points)
        if not any(dominates(other, point, objectives) for j, other in enumerate(points) if j != i)
    ]


def non_dominated_sort(points: Sequence[Point], objectives: Sequence[Objective]) -> list[list[int]]:
    """The points' indices in fronts: the Pareto front first, then the front of the rest, ..."""
    left = list(range(len(points)))
    fronts: list[list[int]] = []
    while left:
        front = [left[i] for i in pareto_front([points[j] for j in left], objectives)]
        fronts.append(front)
        left = [i for i in left if i not in set(front)]
    return fronts


def hypervolume(
    points: Sequence[Point], objectives: Sequence[Objective], reference: Point
) -> float:
    """The area (two objectives) the points dominate, bounded by ``reference``.

    Each objective is turned into one to maximise (``sign * value``); points not
    better than the reference on both count for nothing.
    """
    if len(objectives) != 2:
        raise ValueError(f"hypervolume is computed for two objectives, got {len(objectives)}")
    sx, sy = objectives[0].sign, objectives[1].sign
    rx, ry = sx * reference[0], sy * reference[1]
    maximised = sorted(
        ((sx * p[0], sy * p[1]) for p in points if sx * p[0] > rx and sy * p[1] > ry),
        reverse=True,
    )
    area, best_y = 0.0, ry
    for x, y in maximised:  # by x, largest first: each step adds the strip it alone covers
        if y > best_y:
            area += (x - rx) * (y - best_y)
            best_y = y
    return area
