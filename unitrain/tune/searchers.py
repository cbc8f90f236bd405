"""Search algorithms: one table, one row per algorithm, each imported only when a job uses it.

A row says how to build the algorithm from the generic search space, where
its options go (so a wrong option lists the right ones), and what it cannot
express: each distribution names its traits (``grid``, ``normal``,
``quantised_log``) and a row refuses the traits it cannot handle, naming the
entries, before any trial runs. Adding an algorithm is adding a row; job
validation takes its list of names from :data:`SEARCH_ALGORITHMS`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ray.tune.search import ConcurrencyLimiter

from unitrain.errors import JobValidationError
from unitrain.job.conditions import is_conditional
from unitrain.job.params import TuneConfig
from unitrain.job.records import EarlierTrial
from unitrain.job.search_space import Distribution
from unitrain.tune.ray_space import to_param_space

__all__ = [
    "SEARCH_ALGORITHMS",
    "SearchAlgorithm",
    "accepted_options",
    "build_search_alg",
    "check_search_space",
    "search_seed",
]

log = logging.getLogger(__name__)

Builder = Callable[
    [Sequence[Distribution], dict[str, Any], "TuneConfig"], tuple[Any, dict[str, Any]]
]


@dataclass(frozen=True)
class SearchAlgorithm:
    """One row of the table."""

    name: str
    build: Builder
    #: the class whose keyword arguments are the algorithm's ``options``
    options_of: tuple[str, str]
    #: trait -> what the algorithm cannot do with an entry that has it
    cannot: Mapping[str, str] = field(default_factory=dict)
    #: whether it limits concurrent trials itself (else a ConcurrencyLimiter wraps it)
    limits_concurrency: bool = False
    #: whether it learns from results, so an extended study's trials are given to it
    learns: bool = True


def _basic(entries: Sequence[Distribution], fixed: dict[str, Any], config: TuneConfig):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    searcher = BasicVariantGenerator(
        points_to_evaluate=config.search_alg.points_to_evaluate,
        random_state=config.seed,
        # Ray ignores TuneConfig.max_concurrent_trials for a generator passed
        # in explicitly; the generator takes the limit itself.
        max_concurrent=config.max_concurrent_trials or 0,
        **config.search_alg.options,
    )
    return searcher, to_param_space(entries, fixed)


# Each builder imports its library when a job uses it (HyperOpt, Optuna and
# bayesian-optimization take a second or more to import).


def _hyperopt(entries: Sequence[Distribution], fixed: dict[str, Any], config: TuneConfig):
    from unitrain.tune.hyperopt_space import hyperopt_space
    from unitrain.tune.warm_start import WarmHyperOptSearch

    options = dict(config.search_alg.options)
    # Measured at 25 trials (bench/hpo_quality.py): Ray's default of 20 random trials
    # first leaves TPE 5, and gamma 0.25 puts 2 points in TPE's "good" density; a
    # third of the trials (5 to 10) and gamma 0.5 make it 0.57x random search on Branin.
    options.setdefault("n_initial_points", max(5, min(10, (config.num_samples or 10) // 3)))
    options.setdefault("gamma", 0.5)
    if is_conditional(entries) and config.search_alg.points_to_evaluate:
        raise ValueError(
            "points_to_evaluate cannot be given to HyperOpt's nested (conditional) space; "
            "use optunasearch for points_to_evaluate with conditional entries"
        )
    searcher = WarmHyperOptSearch(
        space=hyperopt_space(entries),
        metric=config.objective.metric,
        mode=config.objective.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        random_state_seed=config.seed,
        **options,
    )
    return searcher, dict(fixed)


def _optuna(entries: Sequence[Distribution], fixed: dict[str, Any], config: TuneConfig):
    from unitrain.tune.optuna_search import ConstrainedOptunaSearch
    from unitrain.tune.optuna_space import optuna_space

    options = dict(config.search_alg.options)
    sampler = optuna_sampler(
        str(options.pop("sampler", "tpe")),
        dict(options.pop("sampler_options", {}) or {}),
        seed=config.seed,
        trials=config.num_samples or 10,
        conditional=is_conditional(entries),
    )
    searcher = ConstrainedOptunaSearch(
        space=optuna_space(entries),
        # several objectives: the lists, as Optuna takes them
        metric=config.metric,
        mode=config.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        sampler=sampler,
        constraints=config.constraints,
        **options,
    )
    return searcher, dict(fixed)


#: ``search_alg.options.sampler`` of optunasearch -> Optuna's sampler class
OPTUNA_SAMPLERS = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "random": "RandomSampler",
    "nsga2": "NSGAIISampler",
    "qmc": "QMCSampler",
}


def optuna_sampler(
    name: str, options: dict[str, Any], *, seed: int | None, trials: int, conditional: bool = False
) -> Any:
    """Optuna's sampler ``name`` with ``options``, seeded; TPE with the measured defaults
    (and, for a conditional space, grouped: one model per set of entries that occur together)."""
    import optuna

    if name not in OPTUNA_SAMPLERS:
        raise ValueError(
            f"unknown optunasearch sampler {name!r}; supported: {', '.join(OPTUNA_SAMPLERS)}"
        )
    if name == "tpe":
        # Optuna 5's own defaults, made explicit (4.x had neither), and a start-up that
        # fits the budget: 0.53x random search on Branin at 25 trials (hpo_quality).
        options = {
            "multivariate": True,
            "constant_liar": True,
            "n_startup_trials": min(10, max(5, trials // 4)),
            **({"group": True} if conditional else {}),
            **options,
        }
    sampler_class = getattr(optuna.samplers, OPTUNA_SAMPLERS[name])
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per study it creates
    with warnings.catch_warnings():
        # TPE's group (the conditional case) is "experimental" since Optuna 2.8: said once
        # in the README, not with every job
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return sampler_class(seed=seed, **options)


def _bayesopt(entries: Sequence[Distribution], fixed: dict[str, Any], config: TuneConfig):
    from unitrain.tune.bayesopt import BayesOptSearcher

    searcher = BayesOptSearcher(
        entries,
        metric=config.objective.metric,
        mode=config.objective.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        seed=config.seed,
        **config.search_alg.options,
    )
    return searcher, dict(fixed)


def _ax(entries: Sequence[Distribution], fixed: dict[str, Any], config: TuneConfig):
    from unitrain.tune.axsearch import AxSearcher

    searcher = AxSearcher(
        entries,
        metric=config.objective.metric,
        mode=config.objective.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        seed=config.seed,
        max_concurrent=config.max_concurrent_trials or 1,
        **config.search_alg.options,
    )
    return searcher, dict(fixed)


_NO_GRID = {"grid": "cannot run a grid"}
_NO_CONDITIONS = {"conditional": "cannot express conditional entries (when)"}

#: one row per name of ``unitrain.job.algorithms.SEARCH_ALGORITHMS``
SEARCH_ALGORITHMS: dict[str, SearchAlgorithm] = {
    row.name: row
    for row in (
        SearchAlgorithm(
            "basicvariantgenerator",
            _basic,
            ("ray.tune.search.basic_variant", "BasicVariantGenerator"),
            limits_concurrency=True,
            learns=False,
        ),
        SearchAlgorithm(
            "hyperoptsearch", _hyperopt, ("ray.tune.search.hyperopt", "HyperOptSearch"), _NO_GRID
        ),
        SearchAlgorithm(
            "bayesoptsearch",
            _bayesopt,
            ("unitrain.tune.bayesopt", "BayesOptSearcher"),
            {
                **_NO_GRID,
                **_NO_CONDITIONS,
                "normal": "needs bounded ranges, not a normal distribution",
            },
        ),
        SearchAlgorithm(
            "axsearch",
            _ax,
            ("unitrain.tune.axsearch", "AxSearcher"),
            {
                **_NO_GRID,
                **_NO_CONDITIONS,
                "normal": "needs bounded ranges, not a normal distribution",
            },
        ),
        SearchAlgorithm(
            "optunasearch",
            _optuna,
            ("ray.tune.search.optuna", "OptunaSearch"),
            {
                **_NO_GRID,
                "normal": "cannot sample a normal distribution",
                "quantised_log": "cannot quantise a log scale",
            },
        ),
    )
}

# Set by unitrain itself, so never one of a user's options.
_TAKEN = frozenset(
    {
        "self",
        "space",
        "metric",
        "mode",
        "points_to_evaluate",
        "seed",
        "random_state",
        "random_state_seed",
        "f",
        "pbounds",
        "verbose",
        "max_concurrent",
        "entries",
        "constraints",
        "objectives",
    }
)


def accepted_options(module: str, attribute: str) -> list[str]:
    """The keyword arguments a class takes, minus those unitrain sets itself."""
    parameters = inspect.signature(getattr(importlib.import_module(module), attribute)).parameters
    return sorted(
        name
        for name, p in parameters.items()
        if name not in _TAKEN and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


def _refuse_what_it_cannot_express(row: SearchAlgorithm, entries: Sequence[Distribution]) -> None:
    for trait, why in row.cannot.items():
        bad = [f"{e.name!r} ({e.type_name})" for e in entries if trait in e.traits]
        if bad:
            remedy = (
                "use optunasearch, hyperoptsearch or basicvariantgenerator, or drop 'when'"
                if trait == "conditional"
                else "use basicvariantgenerator, or change the entries' types"
            )
            raise JobValidationError(
                f"hyperparameters: {row.name} {why}: {', '.join(bad)}; {remedy}"
            )


def search_seed(seed: int | None, earlier: int) -> int | None:
    """The seed a search draws from: a seeded extension of ``earlier`` trials draws anew."""
    return seed + earlier if seed is not None and earlier else seed


def build_search_alg(
    entries: Sequence[Distribution],
    fixed: dict[str, Any],
    config: TuneConfig,
    *,
    limit_concurrency: bool = True,
    earlier: Sequence[EarlierTrial] = (),
) -> tuple[Any, dict[str, Any]]:
    """The searcher and the Tuner's ``param_space`` for this job.

    ``earlier`` are the trials of the study the job extends: an algorithm that
    learns from results is told them before it proposes anything. A seeded
    extension draws from ``seed + len(earlier)``, so it does not repeat the
    draws of the round it extends.
    """
    row = SEARCH_ALGORITHMS[config.search_alg.name]
    _refuse_what_it_cannot_express(row, entries)
    if earlier and config.seed is not None:
        config = config.model_copy(update={"seed": search_seed(config.seed, len(earlier))})
    try:
        searcher, space = row.build(entries, fixed, config)
    except (TypeError, ValueError, AssertionError) as error:
        raise JobValidationError(
            f"tune_config.search_alg: {row.name} rejected the job: {error}; "
            f"its options are {accepted_options(*row.options_of)}"
        ) from None
    if earlier and row.learns:
        if row.name == "hyperoptsearch" and is_conditional(entries):
            log.warning(
                "HyperOpt is not told of the %d earlier trials: their points do not map onto "
                "its nested (conditional) space; optunasearch learns from them",
                len(earlier),
            )
        else:
            _add_evaluated(searcher, earlier, config.metrics)
    if limit_concurrency and config.max_concurrent_trials and not row.limits_concurrency:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=config.max_concurrent_trials)
    return searcher, space


def check_search_space(entries: Sequence[Distribution], config: TuneConfig) -> None:
    """Build the searcher once, only to surface what it cannot handle."""
    build_search_alg(entries, {}, config, limit_concurrency=False)


def _add_evaluated(searcher: Any, earlier: Sequence[EarlierTrial], metrics: Sequence[str]) -> None:
    """Give ``searcher`` each earlier trial's configuration and result (one value per
    objective)."""
    for trial in earlier:
        values = [trial.objective(metric) for metric in metrics]
        if any(value is None for value in values):
            continue
        try:
            searcher.add_evaluated_point(
                dict(trial.config), values[0] if len(values) == 1 else values
            )
        except (ValueError, TypeError, KeyError) as error:
            # One stored value the library will not take costs that trial, not the search.
            log.warning("earlier trial %s not given to the search: %s", trial.key, error)
