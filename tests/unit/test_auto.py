"""``search_alg: "auto"``: which algorithm a job gets, and the reason it is told."""

from __future__ import annotations

import pytest

from unitrain.job.params import TuneConfig
from unitrain.job.search_space import parse_entry
from unitrain.tune.auto import GP_TRIALS, choose

X = parse_entry({"name": "x", "type": "uniform", "min": 0, "max": 1})
CONFIG = TuneConfig(metric="m", search_alg="auto")


@pytest.mark.parametrize(
    ("entries", "trials", "chosen", "because"),
    [
        ([X], 25, "axsearch", "Gaussian process"),
        ([X], GP_TRIALS + 1, "optunasearch", "TPE stays cheap"),
        (
            [X, parse_entry({"name": "b", "type": "grid_search", "options": [1, 2]})],
            10,
            "basicvariantgenerator",
            "grid_search",
        ),
        ([X, parse_entry({"name": "w", "type": "randn"})], 25, "hyperoptsearch", "normal"),
    ],
)
def test_auto_picks_by_the_space_and_the_budget(entries, trials, chosen, because):
    name, why = choose(entries, CONFIG, trials)
    assert name == chosen and because in why


def test_a_job_with_auto_is_planned_with_the_chosen_algorithm_and_says_why(home):
    from unitrain.planning import plan_job

    plan = plan_job(
        {
            "name": "auto-job",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {"metric": "score", "num_samples": 20, "search_alg": "auto"},
        },
        "synthetic",
    )
    assert plan.config.search_alg.name == "axsearch"
    assert any(note.startswith("search_alg auto: axsearch, as 20 trials") for note in plan.notes)
    assert plan.params.tune_config.search_alg.name == "auto"  # the job as given
