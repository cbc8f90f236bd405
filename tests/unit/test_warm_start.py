"""Earlier trials given to each search algorithm: they are counted, and they steer it."""

from __future__ import annotations

import statistics

import pytest

from unitrain.job.params import TuneConfig
from unitrain.job.records import EarlierTrial
from unitrain.job.search_space import parse_entry
from unitrain.tune.searchers import build_search_alg

SPACE = [
    parse_entry({"name": "x", "type": "uniform", "min": 0, "max": 1}),
    parse_entry({"name": "act", "type": "choice", "options": ["relu", "tanh"]}),
]


def earlier(n: int = 30) -> list[EarlierTrial]:
    """A history that says: x near 0.9 with tanh is good, everything else is poor."""
    trials = []
    for i in range(n):
        x = i / (n - 1)
        act = "tanh" if i % 2 else "relu"
        score = -((x - 0.9) ** 2) - (0.0 if act == "tanh" else 0.5)
        trials.append(
            EarlierTrial(
                job="before",
                trial_id=f"t{i:02d}",
                config={"x": x, "act": act},
                metrics={"score": score},
                model_id=i + 1,
                run_id=f"r{i}",
                finished_at=float(i),
            )
        )
    return trials


def config(name: str, seed: int | None = 5) -> TuneConfig:
    return TuneConfig(metric="score", mode="max", seed=seed, search_alg={"name": name})


def suggestions(name: str, history: list[EarlierTrial], n: int = 12) -> list[dict]:
    """What the searcher proposes before any new result (one that waits for a running trial,
    bayesoptsearch, is let go on by ending that trial without a result)."""
    searcher, _ = build_search_alg(SPACE, {}, config(name), earlier=history)
    proposed = []
    for index in range(n):
        suggestion = searcher.suggest(f"new{index}")
        if suggestion is None:
            searcher.on_trial_complete(f"new{index - 1}", error=True)
            suggestion = searcher.suggest(f"new{index}")
        proposed.append(suggestion)
    return proposed


@pytest.mark.parametrize("name", ["hyperoptsearch", "optunasearch", "bayesoptsearch"])
def test_a_model_based_search_proposes_near_the_best_of_the_earlier_trials(name):
    warm = suggestions(name, earlier())
    cold = suggestions(name, [])
    distance = statistics.median(abs(s["x"] - 0.9) for s in warm)
    assert distance < statistics.median(abs(s["x"] - 0.9) for s in cold)
    assert distance < 0.2, warm
    assert sum(s["act"] == "tanh" for s in warm) > len(warm) / 2, warm


def test_each_searcher_holds_the_earlier_trials_as_evaluated():
    history = earlier(7)
    hyperopt, _ = build_search_alg(SPACE, {}, config("hyperoptsearch"), earlier=history)
    done = [t for t in hyperopt._hpopt_trials.trials if t["result"].get("status") == "ok"]
    assert len(done) == 7
    assert sorted(t["result"]["loss"] for t in done) == sorted(
        -t.metrics["score"] for t in history
    )  # HyperOpt minimises: a maximised metric is negated
    optuna, _ = build_search_alg(SPACE, {}, config("optunasearch"), earlier=history)
    assert len(optuna._ot_study.trials) == 7
    assert {t.params["act"] for t in optuna._ot_study.trials} == {"relu", "tanh"}
    bayes, _ = build_search_alg(SPACE, {}, config("bayesoptsearch"), earlier=history)
    assert len(bayes._optimizer.space) == 7


def test_random_search_is_given_nothing_and_a_seeded_extension_draws_anew():
    history = earlier(4)
    first, _ = build_search_alg(SPACE, {}, config("basicvariantgenerator"), earlier=())
    again, _ = build_search_alg(SPACE, {}, config("basicvariantgenerator"), earlier=history)
    assert first._random_state != again._random_state  # seed + number of earlier trials
