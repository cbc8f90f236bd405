"""What each search algorithm accepts, checked before anything runs, and what it proposes."""

from __future__ import annotations

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.params import TuneConfig
from unitrain.job.search_space import parse_entry
from unitrain.tune.searchers import SEARCH_ALGORITHMS, build_search_alg, check_search_space

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


@pytest.mark.parametrize("algorithm", list(SEARCH_ALGORITHMS))
def test_every_algorithm_builds_on_a_mixed_space_and_proposes_members(algorithm):
    searcher, space = build_search_alg(SPACE, {"epochs": 2}, config(algorithm))
    if algorithm == "basicvariantgenerator":
        assert space["epochs"] == 2  # fixed values travel in the generator's param space
        suggestions = [{e.name: space[e.name].sample() for e in SPACE} for _ in range(20)]
    else:
        searcher.set_search_properties("accuracy", "max", space)
        suggestions = []
        for index in range(8 if algorithm == "axsearch" else 20):  # Ax: a GP fit per trial
            suggestions.append(searcher.suggest(f"t{index}"))
            searcher.on_trial_complete(f"t{index}", {"accuracy": index % 3 / 3})
    for suggestion in suggestions:
        for entry in SPACE:
            assert entry.contains(suggestion[entry.name]), (entry.name, suggestion)


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
    assert searcher.suggest("t1") is None  # one trial at a time: it waits for t0
    searcher.on_trial_complete("t0", {"accuracy": -0.002})
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


def test_quantised_log_is_rejected_by_optuna_only_when_really_quantised():
    quantised = [
        parse_entry({"name": "n", "type": "qlograndint", "min": 2, "max": 64, "base": 2, "q": 2})
    ]
    with pytest.raises(JobValidationError, match="optunasearch cannot quantise a log scale: 'n'"):
        check_search_space(quantised, config("optunasearch"))
    plain = [parse_entry({"name": "n", "type": "qlograndint", "min": 2, "max": 64, "base": 2})]
    check_search_space(plain, config("optunasearch"))


def test_the_table_is_where_validation_gets_its_names():
    with pytest.raises(Exception, match="supported: " + ", ".join(SEARCH_ALGORITHMS)):
        config("random_forest")


@pytest.mark.parametrize("algorithm", [a for a in SEARCH_ALGORITHMS if a != "axsearch"])
def test_every_searcher_keeps_integers_inside_min_max_and_reaches_both_ends(algorithm):
    entries = [
        parse_entry({"name": "a", "type": "qrandint", "min": 5, "max": 7}),
        parse_entry({"name": "b", "type": "randint", "min": 5, "max": 7}),
        parse_entry({"name": "c", "type": "lograndint", "min": 5, "max": 7, "base": 2}),
        parse_entry({"name": "d", "type": "qrandint", "min": 5, "max": 15, "q": 5}),
    ]
    # bayesoptsearch's first points are random (its guided ones: the test above)
    options = {"init_points": 1000} if algorithm == "bayesoptsearch" else {}
    tune_config = TuneConfig.model_validate(
        {"metric": "m", "seed": 1, "search_alg": {"name": algorithm, "options": options}}
    )
    searcher, space = build_search_alg(entries, {}, tune_config, limit_concurrency=False)
    if algorithm == "basicvariantgenerator":
        suggestions = [space[e.name].sample(size=150) for e in entries]
        seen = {e.name: set(values) for e, values in zip(entries, suggestions, strict=True)}
    else:
        searcher.set_search_properties("m", "max", space)
        seen = {e.name: set() for e in entries}
        for index in range(150):
            suggestion = searcher.suggest(f"t{index}")
            for name in seen:
                seen[name].add(suggestion[name])
            searcher.on_trial_complete(f"t{index}", {"m": float(index % 7)})
    for name in "abc":
        assert seen[name] == {5, 6, 7}, (name, seen[name])
    assert seen["d"] == {5, 10, 15}


@pytest.mark.parametrize(
    ("num_samples", "options", "random_first"),
    [(None, {}, 5), (12, {}, 5), (25, {}, 8), (500, {}, 10), (40, {"n_initial_points": 3}, 3)],
)
def test_hyperopt_starts_with_a_third_of_its_trials_random(num_samples, options, random_first):
    config = TuneConfig(
        metric="m",
        num_samples=num_samples,
        search_alg={"name": "hyperoptsearch", "options": options},
    )
    searcher, _ = build_search_alg(
        [parse_entry({"name": "x", "type": "uniform", "min": 0, "max": 1})], {}, config
    )
    assert searcher.algo.keywords["n_startup_jobs"] == random_first
    assert searcher.algo.keywords["gamma"] == options.get("gamma", 0.5)


def test_every_name_a_job_may_give_has_a_row():
    from unitrain.job.algorithms import SEARCH_ALGORITHMS as NAMES

    assert tuple(SEARCH_ALGORITHMS) == NAMES


def test_ax_searches_log_integer_and_choice_entries_within_their_ranges():
    entries = [
        parse_entry({"name": "lr", "type": "loguniform", "min": 1e-4, "max": 1e-1, "base": 10}),
        parse_entry({"name": "n", "type": "qrandint", "min": 8, "max": 64, "q": 8}),
        parse_entry({"name": "act", "type": "choice", "options": ["relu", {"leaky": 0.1}]}),
    ]
    searcher, _ = build_search_alg(
        entries,
        {},
        TuneConfig.model_validate(
            {
                "metric": "m",
                "mode": "min",
                "seed": 3,
                "search_alg": {
                    "name": "axsearch",
                    "points_to_evaluate": [{"lr": 0.01, "n": 16, "act": "relu"}],
                },
            }
        ),
    )
    first = searcher.suggest("t0")
    assert first == {"lr": pytest.approx(0.01), "n": 16, "act": "relu"}
    searcher.on_trial_complete("t0", {"m": 1.0})
    for index in range(1, 6):
        suggestion = searcher.suggest(f"t{index}")
        assert all(entry.contains(suggestion[entry.name]) for entry in entries), suggestion
        searcher.on_trial_complete(f"t{index}", {"m": float(index)})
    searcher.on_trial_complete("t9", {"m": 1.0})  # a trial it did not propose: ignored


def test_optuna_is_told_each_trial_s_constraints_and_learns_them():
    entries = [parse_entry({"name": n, "type": "uniform", "min": 0, "max": 1}) for n in "xy"]
    kept_late = []
    for seed in range(4):
        constrained = TuneConfig.model_validate(
            {
                "metric": "score",
                "seed": seed,
                "num_samples": 20,
                "constraints": [{"metric": "x", "max": 0.2}],
                "search_alg": {"name": "optunasearch"},
            }
        )
        searcher, _ = build_search_alg(entries, {}, constrained, limit_concurrency=False)
        searcher.set_search_properties("score", "max", {})
        xs = []
        for index in range(20):
            c = searcher.suggest(f"t{index}")
            score = 1 - (c["x"] - 0.3) ** 2 - (c["y"] - 0.7) ** 2  # best at x=0.3: infeasible
            searcher.on_trial_complete(f"t{index}", {"score": score, **c})
            xs.append(c["x"])
        told = searcher._ot_study.trials[-1].system_attrs["constraints:x <= 0.2"]
        assert told == pytest.approx(xs[-1] - 0.2)  # kept: at most 0, as Optuna reads it
        kept_late.append(sum(x <= 0.2 for x in xs[10:]))
    # random search keeps x <= 0.2 in 2 of 10; Optuna's constrained TPE, past its start-up
    assert sum(kept_late) / len(kept_late) >= 4, kept_late


@pytest.mark.parametrize(("concurrency", "space_filling"), [(None, 5), (2, 6)])
def test_ax_fills_the_space_for_one_more_trial_per_extra_trial_at_a_time(
    concurrency, space_filling
):
    # Its first GP proposal sees five results however many trials run at a time.
    entries = [parse_entry({"name": n, "type": "uniform", "min": 0, "max": 1}) for n in "xy"]
    config = TuneConfig(
        metric="m",
        mode="min",
        seed=1,
        max_concurrent_trials=concurrency,
        search_alg={"name": "axsearch"},
    )
    searcher, _ = build_search_alg(entries, {}, config, limit_concurrency=False)
    running: list[str] = []
    for index in range(space_filling + 1):
        if len(running) == (concurrency or 1):
            searcher.on_trial_complete(running.pop(0), {"m": float(index)})
        running.append(f"t{index}")
        assert searcher.suggest(running[-1]) is not None
    nodes = searcher._client.summarize()["generation_node"].tolist()
    assert nodes == ["Sobol"] * space_filling + ["MBM"], nodes


def test_ax_fits_the_gp_of_its_model_config_after_a_start_seeded_from_the_job():
    from gpytorch.priors import GammaPrior

    from unitrain.tune.axsearch import _generation_strategy

    strategy = _generation_strategy(
        method=None, initialization_budget=5, initialize_with_center=False, seed=7
    )
    nodes = strategy.nodes_by_name
    (sobol,) = nodes["Sobol"].generator_specs
    assert sobol.generator_kwargs.get("seed") == 7
    (gp,) = nodes["MBM"].generator_specs
    (model,) = gp.generator_kwargs["surrogate_spec"].model_configs
    prior = model.covar_module_options["lengthscale_prior"]
    assert isinstance(prior, GammaPrior) and float(prior.concentration) == 3.0
    # Ax's own strategies keep Ax's own model
    (fast,) = (
        _generation_strategy(
            method="fast", initialization_budget=5, initialize_with_center=False, seed=7
        )
        .nodes_by_name["MBM"]
        .generator_specs
    )
    (ax_model,) = fast.generator_kwargs["surrogate_spec"].model_configs
    assert ax_model.covar_module_class is None


def test_ax_refuses_a_method_it_does_not_have_naming_it():
    entries = [parse_entry({"name": "x", "type": "uniform", "min": 0, "max": 1})]
    config = TuneConfig(
        metric="m", mode="min", search_alg={"name": "axsearch", "options": {"method": "best"}}
    )
    with pytest.raises(
        JobValidationError, match=r"axsearch rejected the job: options.method 'best' is not one of"
    ):
        build_search_alg(entries, {}, config)
