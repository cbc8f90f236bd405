"""Which trial of a search is the best, and why trials gave no model.

The best trial has a model and the best finite value of the objective; ties
go to the earliest trial. When the search extends a study, the study's
earlier trials compete too: one of them wins when no new trial does better.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from unitrain.errors import UnitrainError
from unitrain.job.objective import Objective
from unitrain.job.records import EarlierTrial
from unitrain.tune.results import TrialOutcome

__all__ = ["best_trial", "failure_summary"]


def best_trial(
    trials: Sequence[TrialOutcome],
    objective: Objective,
    earlier: Sequence[EarlierTrial] = (),
) -> TrialOutcome | EarlierTrial:
    """The trial with a model and the best value of ``objective``; ties go to the earliest."""
    metric = objective.metric
    candidates: list[TrialOutcome | EarlierTrial] = [*earlier, *trials]
    scored = [t for t in candidates if t.has_model and t.objective(metric) is not None]
    if not scored:
        raise UnitrainError(
            f"no trial finished with a model and a value for {metric!r}; "
            f"of {len(trials)} trial(s): {failure_summary(trials, metric)}"
        )
    # max() keeps the first of equals: the earliest trial wins a tie.
    return max(scored, key=lambda t: objective.sign * t.metrics[metric])


def failure_summary(trials: Sequence[TrialOutcome], metric: str, shown: int = 5) -> str:
    """Why trials gave no model, grouped: ``"3 x plugin 'p' failed: ...; 1 x ..."``."""
    reasons = Counter(
        (t.why_no_model or f"it reported no finite {metric!r}").splitlines()[0][:300]
        for t in trials
        if not t.has_model or t.objective(metric) is None
    )
    parts = [f"{count} x {reason}" for reason, count in reasons.most_common(shown)]
    if len(reasons) > shown:
        parts.append(f"and {len(reasons) - shown} other reason(s); see the trial table")
    return "; ".join(parts) or "no trial ran"
