"""Conditional hyperparameters: the rules of ``when``, and what each searcher proposes."""

from __future__ import annotations

import pytest

from unitrain.errors import JobValidationError
from unitrain.job.conditions import check_conditions, in_order, present, tree
from unitrain.job.params import TuneConfig
from unitrain.job.search_space import parse_entry
from unitrain.tune.searchers import build_search_alg, check_search_space

# momentum exists for sgd and rmsprop; nesterov only when momentum exists and is used
SPACE = [
    parse_entry({"name": "optimizer", "type": "choice", "options": ["adam", "sgd", "rmsprop"]}),
    parse_entry(
        {
            "name": "momentum",
            "type": "uniform",
            "min": 0,
            "max": 0.99,
            "when": {"optimizer": ["sgd", "rmsprop"]},
        }
    ),  # fmt: skip
    parse_entry(
        {
            "name": "nesterov",
            "type": "choice",
            "options": [True, False],
            "when": {"optimizer": ["sgd"]},
        }
    ),  # fmt: skip
    parse_entry(
        {
            "name": "dampening",
            "type": "uniform",
            "min": 0,
            "max": 0.5,
            "when": {"nesterov": [False]},
        }
    ),  # fmt: skip
    parse_entry({"name": "lr", "type": "loguniform", "min": 1e-4, "max": 1e-1, "base": 10}),
]


def entry(name, **keys):
    return parse_entry({"name": name, **keys})


def expected_keys(config):
    keys = {"optimizer", "lr"}
    if config["optimizer"] in ("sgd", "rmsprop"):
        keys.add("momentum")
    if config["optimizer"] == "sgd":
        keys.add("nesterov")
        if config["nesterov"] is False:
            keys.add("dampening")
    return keys


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [entry("m", type="uniform", min=0, max=1, when={"optimiser": ["sgd"]})],
            r"'m'.when: no entry named 'optimiser'",
        ),
        (
            [
                entry("o", type="choice", options=["adam", "sgd"]),
                entry("m", type="uniform", min=0, max=1, when={"o": ["sdg"]}),
            ],
            r"'m'.when: 'o' has no option 'sdg'; its options are \['adam', 'sgd'\]",
        ),
        (
            [
                entry("o", type="uniform", min=0, max=1),
                entry("m", type="uniform", min=0, max=1, when={"o": [0.5]}),
            ],
            r"'m'.when: 'o' is a uniform; a condition names a choice entry",
        ),
        (
            [
                entry("a", type="choice", options=[1, 2], when={"b": [1]}),
                entry("b", type="choice", options=[1, 2], when={"a": [2]}),
            ],
            r"the conditions form a cycle: 'a' -> 'b' -> 'a'",
        ),
        (
            [
                entry("o", type="choice", options=[1, 2]),
                entry("g", type="grid_search", options=[1, 2], when={"o": [1]}),
            ],
            r"a grid_search entry cannot be conditional",
        ),
    ],
)
def test_impossible_conditions_are_refused_naming_the_entry(entries, message):
    with pytest.raises(ValueError, match=message):
        check_conditions(entries)


def test_a_condition_names_one_choice_with_some_options():
    with pytest.raises(ValueError, match="when: name one choice entry"):
        entry("m", type="uniform", min=0, max=1, when={"a": [1], "b": [2]})
    with pytest.raises(ValueError, match="when: list at least one option"):
        entry("m", type="uniform", min=0, max=1, when={"a": []})


def test_a_job_with_a_bad_condition_is_refused_before_anything_runs():
    from unitrain.job.params import validate_params

    job = {
        "name": "j",
        "dataset": 1,
        "is_tune": True,
        "hyperparameters": [
            {"name": "o", "type": "choice", "options": ["adam"]},
            {"name": "m", "type": "uniform", "min": 0, "max": 1, "when": {"o": ["sgd"]}},
        ],
        "tune_config": {"metric": "accuracy"},
    }
    with pytest.raises(JobValidationError, match="'m'.when: 'o' has no option 'sgd'"):
        validate_params(job)


def test_present_drops_what_does_not_hold_and_flattens_nested_choices():
    drawn = {"optimizer": "adam", "momentum": 0.5, "nesterov": True, "dampening": 0.1, "lr": 0.01}
    assert present(SPACE, drawn) == {"optimizer": "adam", "lr": 0.01}
    nested = {
        "optimizer": {
            "optimizer": "sgd",
            "momentum": 0.9,
            "nesterov": {"nesterov": False, "dampening": 0.2},
        },
        "lr": 0.01,
    }
    assert present(SPACE, nested) == {
        "optimizer": "sgd", "momentum": 0.9, "nesterov": False, "dampening": 0.2, "lr": 0.01,
    }  # fmt: skip
    unconditional = [SPACE[0], SPACE[-1]]
    assert present(unconditional, drawn) is drawn


def test_the_tree_and_the_order_put_each_entry_under_its_choice():
    assert tree(SPACE) == [
        "optimizer (choice)",
        "  when optimizer in ['sgd', 'rmsprop']:",
        "    momentum (uniform)",
        "  when optimizer in ['sgd']:",
        "    nesterov (choice)",
        "      when nesterov in [False]:",
        "        dampening (uniform)",
        "lr (loguniform)",
    ]
    names = [e.name for e in in_order(list(reversed(SPACE)))]
    assert names.index("optimizer") < names.index("nesterov") < names.index("dampening")


def config(algorithm, **extra):
    return TuneConfig.model_validate(
        {"metric": "loss", "mode": "min", "seed": 5, "search_alg": {"name": algorithm, **extra}}
    )


@pytest.mark.parametrize("algorithm", ["basicvariantgenerator", "hyperoptsearch", "optunasearch"])
def test_each_searcher_that_takes_conditions_proposes_a_key_only_where_it_holds(algorithm):
    searcher, space = build_search_alg(SPACE, {}, config(algorithm))
    proposals = []
    if algorithm == "basicvariantgenerator":
        drawn = [{e.name: space[e.name].sample() for e in SPACE} for _ in range(60)]
        proposals = [present(SPACE, d) for d in drawn]
    else:
        searcher.set_search_properties("loss", "min", space)
        for index in range(40):  # past the random start-up: the model proposes too
            raw = searcher.suggest(f"t{index}")
            proposal = present(SPACE, raw)
            # the searcher itself samples a conditional entry only where it holds:
            # Optuna asks for it by running, HyperOpt nests it in the choice's option
            if algorithm == "optunasearch":
                assert raw == proposal
            else:
                assert set(raw) == {"optimizer", "lr"}
            proposals.append(proposal)
            loss = proposal["lr"] + proposal.get("momentum", 0.5)
            searcher.on_trial_complete(f"t{index}", {"loss": loss, **proposal})
    seen = set()
    for proposal in proposals:
        assert set(proposal) == expected_keys(proposal), proposal
        for e in SPACE:
            if e.name in proposal:
                assert e.contains(proposal[e.name]), (e.name, proposal)
        seen.add((proposal["optimizer"], proposal.get("nesterov")))
    assert {("adam", None), ("rmsprop", None), ("sgd", True), ("sgd", False)} <= seen


@pytest.mark.parametrize("algorithm", ["bayesoptsearch", "axsearch"])
def test_searchers_without_conditions_refuse_them_naming_the_entries(algorithm):
    with pytest.raises(
        JobValidationError,
        match=rf"{algorithm} cannot express conditional entries \(when\): 'momentum' \(uniform\), "
        r"'nesterov' \(choice\), 'dampening' \(uniform\); use optunasearch, hyperoptsearch",
    ):
        check_search_space(SPACE, config(algorithm))


def test_hyperopt_refuses_points_to_evaluate_in_a_conditional_space():
    points = [{"optimizer": "adam", "lr": 0.01}]
    with pytest.raises(JobValidationError, match="points_to_evaluate cannot be given to HyperOpt"):
        check_search_space(SPACE, config("hyperoptsearch", points_to_evaluate=points))
    check_search_space(SPACE, config("optunasearch", points_to_evaluate=points))
