"""Bayesian optimisation with Ax (BoTorch's Gaussian processes) as a Ray Tune searcher.

Ray's ``AxSearch`` drives Ax's older ``AxClient``; this searcher uses Ax's own
``Client`` API (ax-platform 1.x): the experiment's parameters come from the
job's search space, one trial is asked for at a time (a trial still running
is a pending point for the next one, which Ax's acquisition accounts for), and
each result is told back. Ax starts with a space-filling design (Sobol), then
fits a GP (by default with the priors of :func:`_model_config`). Log-scaled
entries are searched on a log scale, quantised ones in steps of ``q``;
``choice`` options are Ax choices (by index when they are not all numbers,
strings or booleans of one type).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ray.tune.search import Searcher

from unitrain.job.search_space import Choice, Distribution, Range

__all__ = ["AxSearcher"]

_QUIET = ("ax", "botorch", "gpytorch", "linear_operator", "pyro")
#: the name Ax knows the metric by (a plain word: Ax parses its objective string)
_OUTCOME = "objective"


class AxSearcher(Searcher):
    """Suggests configurations with Ax: a space-filling start (Sobol), then a GP.

    Args:
        method: Ax's own ``"fast"`` or ``"quality"`` generation strategy; by default
            Ax's start, then the GP of :func:`_model_config`.
        initialization_budget: the space-filling trials before the GP; by default Ax's 5,
            plus one for each trial beyond the first that runs at the same time.
        initialize_with_center: whether the first trial is the centre of the space.
        max_concurrent: how many trials run at a time (sets the default start).
    """

    def __init__(
        self,
        entries: Sequence[Distribution],
        *,
        metric: str,
        mode: str,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        seed: int | None = None,
        method: Literal["fast", "quality"] | None = None,
        initialization_budget: int | None = None,
        initialize_with_center: bool = False,
        max_concurrent: int = 1,
    ) -> None:
        if method not in (None, "fast", "quality"):
            raise ValueError(f"options.method {method!r} is not one of 'fast', 'quality'")
        super().__init__(metric=metric, mode=mode)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ax.api.client import Client

            self._entries = {entry.name: entry for entry in entries}
            self._client = Client(random_seed=seed)
            self._client.configure_experiment(parameters=[_parameter(entry) for entry in entries])
            sign = "" if mode == "max" else "-"
            self._client.configure_optimization(objective=f"{sign}{_OUTCOME}")
            # Without Ax's centre point: on Branin 0.431 against 0.450 (the centre
            # is a wasted trial there), on Hartmann-6 -2.80 (bench/hpo_quality.py,
            # measured with Ax's own GP).
            if initialization_budget is None:
                initialization_budget = default_initialization_budget(max_concurrent)
            self._client.set_generation_strategy(
                _generation_strategy(
                    method=method,
                    initialization_budget=initialization_budget,
                    initialize_with_center=initialize_with_center,
                    seed=seed,
                )
            )
        self._quiet()
        self._pending_points = [dict(point) for point in points_to_evaluate or []]
        self._live: dict[str, int] = {}

    @staticmethod
    def _quiet() -> None:
        """Ax makes its loggers on first use, at INFO: one line per trial otherwise."""
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] in _QUIET:
                logging.getLogger(name).setLevel(logging.ERROR)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trials: Mapping[int, Mapping[str, Any]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._pending_points:
                point = self._pending_points.pop(0)
                fixed = {n: _to_ax(self._entries[n], v) for n, v in point.items()}
                if set(fixed) == set(self._entries):  # the whole point: exactly it
                    index = self._client.attach_trial(parameters=fixed)
                    trials = {index: fixed}
                else:  # Ax fills in the rest
                    trials = self._client.get_next_trials(max_trials=1, fixed_parameters=fixed)
            else:
                trials = self._client.get_next_trials(max_trials=1)
        self._quiet()
        if not trials:
            return None
        ((index, parameters),) = trials.items()
        self._live[trial_id] = index
        return {n: _from_ax(e, parameters[n]) for n, e in self._entries.items()}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        index = self._live.pop(trial_id, None)
        if index is None:
            return
        value = (result or {}).get(self.metric)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if error or value is None or not math.isfinite(float(value)):
                self._client.mark_trial_failed(index)
            else:
                self._client.complete_trial(index, raw_data={_OUTCOME: float(value)})

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Tell Ax of a point evaluated elsewhere (a trial of an extended study)."""
        if error or pruned or not math.isfinite(value):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            point = {n: _to_ax(e, parameters[n]) for n, e in self._entries.items()}
            index = self._client.attach_trial(parameters=point)
            self._client.complete_trial(index, raw_data={_OUTCOME: float(value)})


#: Ax's own space-filling start (``initialization_budget``) for one trial at a time
AX_INITIALIZATION = 5


def default_initialization_budget(max_concurrent: int) -> int:
    """The space-filling start for ``max_concurrent`` trials at a time.

    The first GP proposal of a sequential search sees all of Ax's 5 space-filling
    results; with two at a time it would see 4 and one pending point, and on
    Hartmann-6 that lost 15.7 % at 25 trials. One more space-filling trial per
    extra concurrent trial gives the first GP the same 5 results: 10 % lost
    (``bench/hpo_quality.py``).
    """
    return AX_INITIALIZATION + max(0, max_concurrent - 1)


def _generation_strategy(
    *,
    method: Literal["fast", "quality"] | None,
    initialization_budget: int,
    initialize_with_center: bool,
    seed: int | None,
) -> Any:
    """Ax's space-filling start, then a GP: by default the one :func:`_model_config` gives.

    ``method`` ``"fast"`` or ``"quality"`` leaves the GP to Ax. The start is
    seeded from the job's seed, so that a job with a seed proposes the same
    trials again.
    """
    from ax.api.utils.generation_strategy_dispatch import choose_generation_strategy
    from ax.api.utils.structs import GenerationStrategyDispatchStruct

    return choose_generation_strategy(
        GenerationStrategyDispatchStruct(
            method=method or "custom",
            initialization_budget=initialization_budget,
            initialization_random_seed=seed,
            initialize_with_center=initialize_with_center,
        ),
        model_config=_model_config() if method is None else None,
    )


def _model_config() -> Any:
    """A Matern-5/2 GP with Gamma priors on its lengthscales, scale and noise.

    These are the priors BoTorch's ``SingleTaskGP`` had before BoTorch 0.12
    (``get_matern_kernel_with_gamma_prior``, and the likelihood beside it).
    BoTorch's newer priors scale the lengthscales with the dimension, for
    problems of tens of dimensions and more; at 25 trials in six dimensions
    the search settled in a poor basin more often with them: on Hartmann-6,
    over 48 seeds with the same start, -3.08 against -2.84 (the README's
    *Search quality*, bench/hpo_quality.py).
    """
    from ax.generators.torch.botorch_modular.kernels import ScaleMaternKernel
    from ax.generators.torch.botorch_modular.surrogate import ModelConfig
    from botorch.models import SingleTaskGP
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.priors import GammaPrior

    return ModelConfig(
        botorch_model_class=SingleTaskGP,
        covar_module_class=ScaleMaternKernel,
        covar_module_options={
            "lengthscale_prior": GammaPrior(3.0, 6.0),
            "outputscale_prior": GammaPrior(2.0, 0.15),
        },
        likelihood_class=GaussianLikelihood,
        likelihood_options={
            "noise_prior": GammaPrior(1.1, 0.05),
            "noise_constraint": GreaterThan(1e-4),
        },
        name="Matern52 with Gamma priors",
    )


def _parameter(entry: Distribution) -> Any:
    """One entry as an Ax parameter (the searcher's row refuses what has none)."""
    from ax.api.configs import ChoiceParameterConfig, RangeParameterConfig

    if isinstance(entry, Choice):
        kind = _choice_kind(entry.options)
        values = (
            entry.options if kind != "str-index" else [str(i) for i in range(len(entry.options))]
        )
        kinds: dict[str, Literal["float", "int", "str", "bool"]] = {
            "float": "float", "int": "int", "str": "str", "bool": "bool", "str-index": "str",
        }  # fmt: skip
        return ChoiceParameterConfig(name=entry.name, values=values, parameter_type=kinds[kind])
    if isinstance(entry, Range):
        low, high = entry.bounds
        q = entry.effective_q
        step = None if q is None or (entry.INTEGER and q == 1) else float(q)
        if low == high:  # Ax refuses an empty range; a one-value range is that value
            high = low + (1 if entry.INTEGER else 1e-12)
        return RangeParameterConfig(
            name=entry.name,
            bounds=(float(low), float(high)) if not entry.INTEGER else (int(low), int(high)),
            parameter_type="int" if entry.INTEGER else "float",
            step_size=None if entry.LOG else step,
            scaling="log" if entry.LOG else "linear",
        )
    raise TypeError(f"{entry.name!r}: Ax cannot search a {entry.type_name}")


def _choice_kind(options: list[Any]) -> str:
    """Ax's type for a list of options, or ``"str-index"`` for anything else."""
    for python, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if all(type(option) is python for option in options):
            return name
    return "str-index"


def _to_ax(entry: Distribution, value: Any) -> Any:
    if isinstance(entry, Choice) and _choice_kind(entry.options) == "str-index":
        return str(entry.options.index(value))
    return value


def _from_ax(entry: Distribution, value: Any) -> Any:
    if isinstance(entry, Choice):
        if _choice_kind(entry.options) == "str-index":
            return entry.options[int(value)]
        return value
    if isinstance(entry, Range):
        low, high = entry.bounds
        q = entry.effective_q
        number = float(value)
        if q is not None and entry.LOG:  # Ax has no step on a log scale: round here
            number = round(number / q) * q
        number = min(max(number, low), high)
        return int(round(number)) if entry.INTEGER else number
    return value
