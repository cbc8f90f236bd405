"""Search algorithms by name, each imported only when a job uses it.

Every builder takes the generic search space and the tune config and returns
``(searcher, param_space)``; what an algorithm cannot express is rejected
with its name and the supported alternatives, before any trial runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from unitrain import search_space as ss
from unitrain.errors import JobValidationError
from unitrain.params import TuneConfig
from unitrain.ray_space import to_param_space

__all__ = ["build_search_alg", "check_search_space"]

Builder = Callable[[Sequence[Any], dict[str, Any], TuneConfig], tuple[Any, dict[str, Any]]]


def _reject(algorithm: str, entries: Sequence[Any], kinds: tuple[type, ...], why: str) -> None:
    # An integer with q=1 is not quantised, whatever its type says.
    matching: list[Any] = [
        e for e in entries if isinstance(e, kinds) and getattr(e, "effective_q", None) != 1
    ]
    bad = [f"{e.name!r} ({e.type})" for e in matching]
    if bad:
        raise JobValidationError(
            f"hyperparameters: {algorithm} {why}: {', '.join(bad)}; "
            "use basicvariantgenerator, or change the entries' types"
        )


def _basic(entries: Sequence[Any], fixed: dict[str, Any], config: TuneConfig):
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


def _hyperopt(entries: Sequence[Any], fixed: dict[str, Any], config: TuneConfig):
    _reject("hyperoptsearch", entries, (ss.GridSearch,), "cannot run a grid")
    from ray.tune.search.hyperopt import HyperOptSearch

    space = to_param_space(entries)
    converted = HyperOptSearch.convert_search_space(space)
    searcher = HyperOptSearch(
        space=converted,
        metric=config.metric,
        mode=config.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        random_state_seed=config.seed,
        **config.search_alg.options,
    )
    return searcher, dict(fixed)


def _optuna(entries: Sequence[Any], fixed: dict[str, Any], config: TuneConfig):
    _reject("optunasearch", entries, (ss.GridSearch,), "cannot run a grid")
    _reject("optunasearch", entries, (ss.RandN,), "cannot sample a normal distribution")
    _reject(
        "optunasearch",
        entries,
        (ss.QLogUniform, ss.QLogRandInt),
        "cannot quantise a log scale",
    )
    from ray.tune.search.optuna import OptunaSearch

    space = OptunaSearch.convert_search_space(to_param_space(entries))
    searcher = OptunaSearch(
        space=space,
        metric=config.metric,
        mode=config.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        seed=config.seed,
        **config.search_alg.options,
    )
    return searcher, dict(fixed)


def _bayesopt(entries: Sequence[Any], fixed: dict[str, Any], config: TuneConfig):
    _reject("bayesoptsearch", entries, (ss.GridSearch,), "cannot run a grid")
    _reject(
        "bayesoptsearch", entries, (ss.RandN,), "needs bounded ranges, not a normal distribution"
    )
    from unitrain.bayesopt import BayesOptSearcher

    searcher = BayesOptSearcher(
        entries,
        metric=config.metric,
        mode=config.mode,
        points_to_evaluate=config.search_alg.points_to_evaluate,
        seed=config.seed,
        **config.search_alg.options,
    )
    return searcher, dict(fixed)


# Where each algorithm's options go (for the list shown when one is wrong).
_CLASSES = {
    "basicvariantgenerator": ("ray.tune.search.basic_variant", "BasicVariantGenerator"),
    "hyperoptsearch": ("ray.tune.search.hyperopt", "HyperOptSearch"),
    "bayesoptsearch": ("bayes_opt", "BayesianOptimization"),
    "optunasearch": ("ray.tune.search.optuna", "OptunaSearch"),
}


def accepted_options(module: str, attribute: str) -> list[str]:
    """The keyword arguments a class takes, minus those unitrain sets itself."""
    import importlib
    import inspect

    parameters = inspect.signature(getattr(importlib.import_module(module), attribute)).parameters
    taken = {
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
    }
    return sorted(
        name
        for name, p in parameters.items()
        if name not in taken and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


_BUILDERS: dict[str, Builder] = {
    "basicvariantgenerator": _basic,
    "hyperoptsearch": _hyperopt,
    "bayesoptsearch": _bayesopt,
    "optunasearch": _optuna,
}


def build_search_alg(
    entries: Sequence[Any],
    fixed: dict[str, Any],
    config: TuneConfig,
    *,
    limit_concurrency: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """The searcher and the Tuner's ``param_space`` for this job."""
    name = config.search_alg.name
    try:
        searcher, space = _BUILDERS[name](entries, fixed, config)
        if limit_concurrency and config.max_concurrent_trials and name != "basicvariantgenerator":
            from ray.tune.search import ConcurrencyLimiter

            searcher = ConcurrencyLimiter(searcher, max_concurrent=config.max_concurrent_trials)
        return searcher, space
    except JobValidationError:
        raise
    except (TypeError, ValueError) as error:
        accepted = accepted_options(*_CLASSES[name])
        raise JobValidationError(
            f"tune_config.search_alg: {name} rejected the job: {error}; its options are {accepted}"
        ) from None


def check_search_space(entries: Sequence[Any], config: TuneConfig) -> None:
    """Build the searcher once, only to surface what it cannot handle."""
    build_search_alg(entries, {}, config)
