"""What each search algorithm and scheduler accepts, checked before anything runs."""

from __future__ import annotations

import pytest

from unitrain.errors import JobValidationError
from unitrain.params import TuneConfig
from unitrain.schedulers import build_scheduler
from unitrain.search_algorithms import build_search_alg, check_search_space
from unitrain.search_space import parse_entry

SPACE = [
    parse_entry({"name": "batch_size", "type": "choice", "options": [16, 32, 64]}),
    parse_entry(
        {"name": "learning_rate", "type": "loguniform", "min": 1e-4, "max": 1e-2, "base": 10}
    ),
    parse_entry({"name": "units", "type": "qrandint", "min": 16, "max": 128, "q": 16}),
]
GRID = [parse_entry({"name": "b", "type": "grid_search", "options": [1, 2]})]
NORMAL = [parse_entry({"name": "noise", "type": "randn", "mean": 0, "sd": 1})]


def config(algorithm: str = "basicvariantgenerator", **extra) -> TuneConfig:
    return TuneConfig.model_validate(
        {"metric": "accuracy", "search_alg": {"name": algorithm, **extra}}
    )


@pytest.mark.parametrize(
    "algorithm", ["basicvariantgenerator", "hyperoptsearch", "bayesoptsearch", "optunasearch"]
)
def test_every_algorithm_builds_on_a_mixed_space(algorithm):
    searcher, _ = build_search_alg(SPACE, {"epochs": 2}, config(algorithm))
    assert searcher is not None


@pytest.mark.parametrize("algorithm", ["hyperoptsearch", "bayesoptsearch", "optunasearch"])
def test_grid_is_only_for_the_basic_generator(algorithm):
    with pytest.raises(
        JobValidationError,
        match=rf"hyperparameters: {algorithm} cannot run a grid: 'b' \(grid_search\)",
    ):
        check_search_space(GRID, config(algorithm))
    check_search_space(GRID, config())


def test_normal_distribution_is_rejected_where_unsupported():
    with pytest.raises(JobValidationError, match="bayesoptsearch needs bounded ranges"):
        check_search_space(NORMAL, config("bayesoptsearch"))
    with pytest.raises(JobValidationError, match="optunasearch cannot sample a normal"):
        check_search_space(NORMAL, config("optunasearch"))
    check_search_space(NORMAL, config("hyperoptsearch"))


def test_unknown_search_alg_option_names_the_algorithm():
    with pytest.raises(
        JobValidationError, match="tune_config.search_alg: hyperoptsearch rejected the job"
    ):
        build_search_alg(SPACE, {}, config("hyperoptsearch", options={"warp_speed": 9}))


def test_scheduler_options_are_checked():
    good = TuneConfig.model_validate(
        {"metric": "a", "scheduler": {"name": "hyperband", "options": {"max_t": 100}}}
    )
    assert type(build_scheduler(good)).__name__ == "HyperBandScheduler"
    bad = TuneConfig.model_validate(
        {"metric": "a", "scheduler": {"name": "asha", "options": {"speed": 1}}}
    )
    with pytest.raises(
        JobValidationError, match=r"tune_config.scheduler.options: asha rejected \['speed'\]"
    ):
        build_scheduler(bad)
    pbt = TuneConfig.model_validate({"metric": "a", "scheduler": "pbt"})
    with pytest.raises(JobValidationError, match="pbt needs 'hyperparam_mutations'"):
        build_scheduler(pbt)
    for name in ("fifo", "median"):
        build_scheduler(TuneConfig.model_validate({"metric": "a", "scheduler": name}))


def test_bayesopt_suggestions_respect_types_and_bounds():
    searcher, _ = build_search_alg(
        SPACE,
        {},
        config(
            "bayesoptsearch",
            points_to_evaluate=[{"batch_size": 32, "learning_rate": 0.001, "units": 64}],
        ),
    )
    first = searcher.suggest("t0")
    assert first == {"batch_size": 32, "learning_rate": pytest.approx(0.001), "units": 64}
    for index in range(1, 12):
        suggestion = searcher.suggest(f"t{index}")
        assert suggestion["batch_size"] in (16, 32, 64)
        assert 1e-4 <= suggestion["learning_rate"] <= 1e-2
        assert suggestion["units"] % 16 == 0 and 16 <= suggestion["units"] <= 128
        searcher.on_trial_complete(
            f"t{index}", {"accuracy": -abs(suggestion["learning_rate"] - 0.003)}
        )


def test_seeded_searchers_repeat_their_suggestions():
    for algorithm in ("hyperoptsearch", "bayesoptsearch", "optunasearch"):
        runs = []
        for _ in range(2):
            searcher, space = build_search_alg(
                SPACE, {}, config(algorithm).model_copy(update={"seed": 7})
            )
            searcher.set_search_properties("accuracy", "max", space)
            runs.append([searcher.suggest(f"t{i}") for i in range(3)])
        assert runs[0] == runs[1], algorithm
