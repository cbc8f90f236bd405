"""Plots that explain a finished search, as MLflow images and Prefect image artifacts.

Three pictures of the same trials, beside the optimisation history the summary
already charts:

- parallel coordinates: each trial a line through its hyperparameters (scaled
  to their range; choices by position) to the metric, coloured by the metric;
- parameter importance: how much of the metric's variation each
  hyperparameter explains on its own (its correlation ratio, from 5 trials
  with a metric on);
- learning curves: each trial's intermediate values of the metric, with a
  cross where the scheduler stopped a trial early.

They are PNG files in the job's MLflow run (``plots/``); each Prefect image
artifact points at the file through the MLflow UI (``UNITRAIN_MLFLOW_UI_URL``,
shown by ``unitrain serve``). A search of fewer than two trials with a metric
has nothing to explain and gets no plots.
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any

from unitrain.job.plan import TuningPlan
from unitrain.reporting.trial_table import artifact_key
from unitrain.run_sinks import read_metrics
from unitrain.settings import settings
from unitrain.stores.job_state import JobFolder
from unitrain.stores.runs import RunStore
from unitrain.tune.results import TrialOutcome

__all__ = ["importance", "publish_plots", "search_plots"]

log = logging.getLogger(__name__)
MIN_TRIALS = 2
MIN_TRIALS_FOR_IMPORTANCE = 5


def search_plots(
    plan: TuningPlan, trials: list[TrialOutcome], trials_root: Path
) -> dict[str, bytes]:
    """File name -> PNG of each plot the trials allow (none for fewer than two scored)."""
    metric = plan.config.metric
    scored = [t for t in trials if _number(t.metrics.get(metric)) is not None]
    if len(scored) < MIN_TRIALS:
        return {}
    plots = {"parallel_coordinates.png": _parallel_coordinates(plan, scored)}
    if len(scored) >= MIN_TRIALS_FOR_IMPORTANCE and plan.space:
        plots["parameter_importance.png"] = _importance(plan, scored)
    curves = _learning_curves(plan, trials, trials_root)
    if curves is not None:
        plots["learning_curves.png"] = curves
    return plots


def publish_plots(plan: TuningPlan, trials: list[TrialOutcome], job_run: str) -> dict[str, str]:
    """Make the plots, store them in the job's MLflow run, and show them in Prefect.

    Returns each plot's title and its URL in the MLflow UI; a failure is
    logged, never raised.
    """
    from prefect.artifacts import create_image_artifact

    try:
        plots = search_plots(plan, trials, JobFolder(plan.job).trials_path)
        if not plots:
            return {}
        RunStore().log_files(job_run, plots, "plots")
        shown: dict[str, str] = {}
        for name in plots:
            title = name.removesuffix(".png").replace("_", " ")
            url = f"{settings().mlflow_ui_url}/get-artifact?path=plots/{name}&run_uuid={job_run}"
            create_image_artifact(
                url,
                key=artifact_key(title.replace(" ", "-"), plan.job),
                description=f"{title.capitalize()} of job {plan.job}",
            )
            shown[title] = url
        return shown
    except Exception as error:  # pictures never fail a job
        log.warning("could not publish the search's plots: %s", error)
        return {}


def _parallel_coordinates(plan: TuningPlan, trials: list[TrialOutcome]) -> bytes:
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    metric = plan.config.metric
    names = plan.searched_names
    columns = [_scaled([t.config.get(n) for t in trials]) for n in names]
    values = [float(t.metrics[metric]) for t in trials]
    columns.append(_scaled(values))
    low, high = min(values), max(values)
    figure, axes = _figure(max(6.0, 1.6 * len(columns)), 4.5)
    # The best drawn last, on top; all lines one collection (a thousand trials draw fast).
    objective = plan.objective
    order = sorted(range(len(trials)), key=lambda i: objective.sign * values[i])
    shares = [objective.share(values[i], low, high) for i in order]
    lines = [list(enumerate(column[i] for column in columns)) for i in order]
    axes.add_collection(
        LineCollection(lines, colors=colormaps["viridis"](shares), alpha=0.6, linewidths=1.0)
    )
    axes.plot(*zip(*lines[-1], strict=True), color="black", linewidth=2.0)
    axes.set_xlim(-0.1, len(columns) - 0.9)
    axes.set_ylim(-0.05, 1.05)
    axes.set_xticks(range(len(columns)), [*names, metric], rotation=20)
    axes.set_yticks([0, 1], ["low", "high"])
    axes.set_title(f"{len(trials)} trials: hyperparameters against {metric} (best in bold)")
    return _png(figure)


def importance(plan: TuningPlan, trials: list[TrialOutcome]) -> dict[str, float]:
    """Each hyperparameter's share (summing to 1) of the metric's variation over ``trials``.

    A hyperparameter's main effect: the share of the metric's variance between
    groups of trials with like values of it (numbers in quantile bins, choices
    by value), less what as many groups of noise would explain (epsilon
    squared, so a many-valued parameter is not favoured), the shares then
    scaled to sum to 1.
    """
    import numpy as np

    target = np.array([float(t.metrics[plan.config.metric]) for t in trials])
    total = float(((target - target.mean()) ** 2).sum())
    effects: dict[str, float] = {}
    for name in plan.searched_names:
        groups = _groups([t.config.get(name) for t in trials], max(2, min(10, len(trials) // 5)))
        kinds = np.unique(groups)
        between = sum(
            float((groups == g).sum()) * (float(target[groups == g].mean()) - target.mean()) ** 2
            for g in kinds
        )
        within = total - between
        spare = len(target) - len(kinds)
        # epsilon squared: the share, less what as many groups of pure noise would explain
        noise = (len(kinds) - 1) * within / spare if spare > 0 else between
        effects[name] = max(between - noise, 0.0) / total if total > 0 else 0.0
    scale = sum(effects.values())
    share = 1.0 / len(effects) if effects else 0.0
    return {name: (effect / scale if scale else share) for name, effect in effects.items()}


def _groups(values: list[Any], bins: int) -> Any:
    """Group labels: each distinct value its own group when there are few (choices), else
    quantile bins of the numbers."""
    import numpy as np

    distinct = sorted({repr(v) for v in values})
    if len(distinct) <= bins or any(_number(v) is None for v in values):
        return np.array([distinct.index(repr(v)) for v in values])
    numbers = np.array([float(v) for v in values])
    edges = np.quantile(numbers, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, numbers, side="right")


def _importance(plan: TuningPlan, trials: list[TrialOutcome]) -> bytes:
    metric = plan.config.metric
    ranked = sorted(importance(plan, trials).items(), key=lambda pair: pair[1])
    figure, axes = _figure(6.5, 1.0 + 0.45 * len(ranked))
    axes.barh([n for n, _ in ranked], [v for _, v in ranked], color="#3b75af")
    axes.set_xlabel(f"share of the variation of {metric} explained by each alone")
    axes.set_title(f"Parameter importance over {len(trials)} trials")
    return _png(figure)


def _learning_curves(
    plan: TuningPlan, trials: list[TrialOutcome], trials_root: Path
) -> bytes | None:
    metric = plan.config.metric
    curves: dict[str, list[tuple[int, float]]] = {}
    for trial in trials:
        lines, _ = read_metrics(trials_root / trial.trial_id / "record")
        # The metric as reported; else the one logged metric of that name
        # ("validation/loss" and "training/loss" are two different curves).
        keys = {key for key, *_ in lines}
        suffixed = sorted(k for k in keys if k.endswith("/" + metric))
        key = metric if metric in keys else (suffixed[0] if len(suffixed) == 1 else "")
        points = sorted((int(step), float(value)) for k, value, _, step in lines if k == key)
        if points:
            curves[trial.trial_id] = points
    if not any(len(points) > 1 for points in curves.values()):
        return None  # one value per trial: no curve to draw
    from matplotlib.collections import LineCollection

    figure, axes = _figure(7.5, 4.5)
    stopped = {t.trial_id for t in trials if t.ended == "KILLED"}
    colours = [f"C{i % 10}" for i in range(len(curves))]
    axes.add_collection(
        LineCollection(list(curves.values()), colors=colours, alpha=0.5, linewidths=1.0)
    )
    axes.autoscale()
    ends = [points[-1] for trial_id, points in curves.items() if trial_id in stopped]
    if ends:
        axes.plot(*zip(*ends, strict=True), "x", color="#c0392b", markersize=8)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    title = f"{metric} of {len(curves)} trials"
    if stopped:
        title += f"; x: {len(stopped)} stopped early by the scheduler"
    axes.set_title(title)
    return _png(figure)


def _scaled(values: list[Any]) -> list[float]:
    """Values on [0, 1]: numbers by their range, anything else by its place among the values."""
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        low, high = min(numbers), max(numbers)  # type: ignore[type-var]
        span = (high - low) or 1.0  # type: ignore[operator]
        return [(n - low) / span for n in numbers]  # type: ignore[operator]
    kinds = sorted({repr(v) for v in values})
    return [kinds.index(repr(v)) / max(len(kinds) - 1, 1) for v in values]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure and its axes, without pyplot (no display, no global state, a faster import)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
