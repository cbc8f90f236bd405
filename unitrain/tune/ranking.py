"""Which trials of a search are the best: the best one, and with several objectives the front.

A trial competes when it has a model, a finite value of every objective, and
keeps every constraint (``tune_config.constraints``). With one objective the
best has the best value; ties go to the earliest trial. With several, the
Pareto front is the competing trials no other one dominates, and the best
(the one model ``model_id`` and ``best-<job>`` point at) is the front's best
on ``tune_config.select`` (by default the first metric). When the search
extends a study, the study's earlier trials compete too: one of them wins
when no new trial does better.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from unitrain.errors import UnitrainError
from unitrain.job.objective import Objective
from unitrain.job.params import TuneConfig
from unitrain.job.pareto import pareto_front
from unitrain.job.records import EarlierTrial
from unitrain.tune.results import TrialOutcome

__all__ = ["Ranking", "best_trial", "failure_summary", "rank"]

Candidate = TrialOutcome | EarlierTrial


@dataclass(frozen=True)
class Ranking:
    """The outcome of a search's comparison of its trials."""

    best: Candidate
    #: the Pareto front (several objectives; with one: the best alone), in trial order
    front: list[Candidate]
    #: the trials that ran to their end but broke a constraint
    infeasible: list[str]


def rank(
    trials: Sequence[TrialOutcome], config: TuneConfig, earlier: Sequence[EarlierTrial] = ()
) -> Ranking:
    """The best trial, the front and the infeasible trials of a search."""
    pool: list[Candidate] = [*earlier, *trials]
    scored = [t for t in pool if t.has_model and _values(t, config.objectives) is not None]
    infeasible = [t.key for t in scored if not config.feasible(t.metrics)]
    feasible = [t for t in scored if config.feasible(t.metrics)]
    if not feasible:
        raise UnitrainError(_nothing_to_choose(trials, config, len(infeasible)))
    best = _best(feasible, config.objective)
    if not config.several:
        return Ranking(best, [best], infeasible)
    points = [_values(t, config.objectives) for t in feasible]
    front = [feasible[i] for i in pareto_front(points, config.objectives)]  # type: ignore[arg-type]
    return Ranking(_best(front, config.objective), front, infeasible)


def best_trial(
    trials: Sequence[TrialOutcome], objective: Objective, earlier: Sequence[EarlierTrial] = ()
) -> Candidate:
    """The trial with a model and the best value of ``objective``; ties go to the earliest."""
    return rank(trials, TuneConfig(metric=objective.metric, mode=objective.mode), earlier).best


def _best(candidates: Sequence[Candidate], objective: Objective) -> Candidate:
    # max() keeps the first of equals: the earliest trial wins a tie.
    return max(candidates, key=lambda t: objective.sign * t.metrics[objective.metric])


def _values(trial: Candidate, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    values = [trial.objective(o.metric) for o in objectives]
    return None if any(v is None for v in values) else tuple(values)  # type: ignore[arg-type]


def _nothing_to_choose(trials: Sequence[TrialOutcome], config: TuneConfig, broke: int) -> str:
    names = " and ".join(repr(m) for m in config.metrics)
    text = (
        f"no trial finished with a model and a value for {names}; "
        f"of {len(trials)} trial(s): {failure_summary(trials, config.metrics[0])}"
    )
    if broke:
        limits = ", ".join(c.describe() for c in config.constraints)
        text = (
            f"no trial kept the constraints ({limits}): {broke} trial(s) with a model broke "
            f"them, of {len(trials)} trial(s); loosen tune_config.constraints or widen the search"
        )
    return text


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
