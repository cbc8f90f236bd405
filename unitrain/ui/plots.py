"""Plots that explain a finished search, as MLflow images and Prefect image artifacts.

Three pictures of the same trials, beside the optimisation history the summary
already charts:

- parallel coordinates: each trial a line through its hyperparameters to the
  metric, coloured by the metric (with its colour bar); each axis its own
  scale with its values (log-scaled types on a log axis, choices by name, see
  ``unitrain.ui.plot_axes``);
- parameter importance: how much of the metric's variation each
  hyperparameter explains on its own (its correlation ratio, from 5 trials
  with a metric on), each bar with its value;
- learning curves: each trial's intermediate values of the metric, with a
  cross where the scheduler stopped a trial early;
- with several objectives, the Pareto front: every trial at its objectives
  (two: one scatter; more: one per pair), the front's trials joined and in red,
  the trials that broke a constraint as grey crosses.

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
from unitrain.tune.ranking import Ranking
from unitrain.tune.results import TrialOutcome
from unitrain.ui.plot_axes import ABSENT, Axis

__all__ = ["importance", "publish_plots", "search_plots"]

log = logging.getLogger(__name__)
MIN_TRIALS = 2
MIN_TRIALS_FOR_IMPORTANCE = 5


def search_plots(
    plan: TuningPlan,
    trials: list[TrialOutcome],
    trials_root: Path,
    ranking: Ranking | None = None,
) -> dict[str, bytes]:
    """File name -> PNG of each plot the trials allow (none for fewer than two scored)."""
    metric = plan.objective.metric
    scored = [t for t in trials if _number(t.metrics.get(metric)) is not None]
    if len(scored) < MIN_TRIALS:
        return {}
    plots = {"parallel_coordinates.png": _parallel_coordinates(plan, scored)}
    if len(scored) >= MIN_TRIALS_FOR_IMPORTANCE and plan.space:
        plots["parameter_importance.png"] = _importance(plan, scored)
    curves = _learning_curves(plan, trials, trials_root)
    if curves is not None:
        plots["learning_curves.png"] = curves
    if plan.config.several and ranking is not None:
        plots["pareto_front.png"] = _pareto_front(plan, trials, ranking)
    return plots


def publish_plots(
    plan: TuningPlan, trials: list[TrialOutcome], job_run: str, ranking: Ranking | None = None
) -> dict[str, str]:
    """Make the plots, store them in the job's MLflow run, and show them in Prefect.

    Returns each plot's title and its URL in the MLflow UI; a failure is
    logged, never raised.
    """
    from prefect.artifacts import create_image_artifact

    try:
        plots = search_plots(plan, trials, JobFolder(plan.job).trials_path, ranking)
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
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    objective = plan.objective
    metric = objective.metric
    entries = {entry.name: entry for entry in plan.space}
    values = [float(t.metrics[metric]) for t in trials]
    axes_of = [
        Axis.of(name, [t.config.get(name) for t in trials], entries.get(name))
        for name in plan.searched_names
    ]
    axes_of.append(Axis.of(metric, values))
    figure, axes = _figure(max(6.5, 1.7 * len(axes_of) + 1.5), 4.8)
    # The best drawn last, on top; all lines one collection (a thousand trials draw fast).
    order = sorted(range(len(trials)), key=lambda i: objective.sign * values[i])
    row = {
        i: [axis.position(trials[i].config.get(axis.name)) for axis in axes_of[:-1]]
        + [axes_of[-1].position(values[i])]
        for i in order
    }
    lines = [list(enumerate(row[i])) for i in order]
    colours = colormaps["viridis"]
    scale = Normalize(min(values), max(values)) if max(values) > min(values) else Normalize()
    axes.add_collection(
        LineCollection(
            lines, colors=colours(scale([values[i] for i in order])), alpha=0.6, linewidths=1.0
        )
    )
    axes.plot(*zip(*lines[-1], strict=True), color="black", linewidth=2.0)
    # Each axis its own scale: a vertical line with its values (or its choices).
    for x, axis in enumerate(axes_of):
        axes.axvline(x, color="#888888", linewidth=0.8, zorder=0)
        ticks = axis.ticks()
        if x < len(axes_of) - 1 and any(row[i][x] == ABSENT for i in order):
            ticks.append((ABSENT, "n/a"))
        for y, label in ticks:
            axes.plot([x - 0.03, x], [y, y], color="#888888", linewidth=0.8)
            axes.text(x - 0.05, y, label, ha="right", va="center", fontsize=7, bbox=_LABEL_BOX)
    axes.set_xlim(-0.5, len(axes_of) - 0.6)
    axes.set_ylim(ABSENT - 0.05, 1.05)
    names = [axis.name + (" (log)" if axis.log else "") for axis in axes_of]
    axes.set_xticks(range(len(axes_of)), names, rotation=15)
    axes.set_yticks([])
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    bar = figure.colorbar(ScalarMappable(norm=scale, cmap=colours), ax=axes, pad=0.02)
    bar.set_label(f"{metric} ({objective.mode})")
    axes.set_title(f"{len(trials)} trials: hyperparameters against {metric} (best in bold)")
    return _png(figure)


#: a tick label stays readable over the lines
_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5}


def importance(plan: TuningPlan, trials: list[TrialOutcome]) -> dict[str, float]:
    """Each hyperparameter's share (summing to 1) of the metric's variation over ``trials``.

    A hyperparameter's main effect: the share of the metric's variance between
    groups of trials with like values of it (numbers in quantile bins, choices
    by value), less what as many groups of noise would explain (epsilon
    squared, so a many-valued parameter is not favoured), the shares then
    scaled to sum to 1.
    """
    import numpy as np

    target = np.array([float(t.metrics[plan.objective.metric]) for t in trials])
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
    metric = plan.objective.metric
    ranked = sorted(importance(plan, trials).items(), key=lambda pair: pair[1])
    figure, axes = _figure(6.5, 1.0 + 0.45 * len(ranked))
    bars = axes.barh([n for n, _ in ranked], [v for _, v in ranked], color="#3b75af")
    axes.bar_label(bars, labels=[f"{v:.2f}" for _, v in ranked], padding=3, fontsize=8)
    axes.set_xlim(0, max([v for _, v in ranked] + [0.0]) * 1.15 or 1.0)
    axes.set_xlabel(f"share of the variation of {metric} explained by each alone")
    axes.set_title(f"Parameter importance over {len(trials)} trials")
    return _png(figure)


def _learning_curves(
    plan: TuningPlan, trials: list[TrialOutcome], trials_root: Path
) -> bytes | None:
    metric = plan.objective.metric
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


def _pareto_front(plan: TuningPlan, trials: list[TrialOutcome], ranking: Ranking) -> bytes:
    objectives = plan.config.objectives
    names = [o.metric for o in objectives]
    scored = [t for t in trials if all(_number(t.metrics.get(n)) is not None for n in names)]
    front = {t.key for t in ranking.front}
    broke = set(ranking.infeasible)
    pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    columns = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / columns)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0 * columns, 4.2 * rows))
    for place, (a, b) in enumerate(pairs, start=1):
        axes = figure.add_subplot(rows, columns, place)
        groups = (
            ("other trials", [t for t in scored if t.key not in front | broke], "o", "#7f8c8d"),
            ("broke a constraint", [t for t in scored if t.key in broke], "x", "#b0b0b0"),
            ("Pareto front", [t for t in scored if t.key in front], "o", "#c0392b"),
        )
        for label, group, marker, colour in groups:
            if group:
                xs = [float(t.metrics[names[a]]) for t in group]
                ys = [float(t.metrics[names[b]]) for t in group]
                axes.scatter(xs, ys, marker=marker, color=colour, label=label, s=28)
        if len(names) == 2:  # the front as a line from one end to the other
            ends = sorted(
                (float(t.metrics[names[a]]), float(t.metrics[names[b]]))
                for t in scored
                if t.key in front
            )
            if len(ends) > 1:
                axes.plot(*zip(*ends, strict=True), color="#c0392b", linewidth=1.2)
        axes.set_xlabel(f"{names[a]} ({objectives[a].mode})")
        axes.set_ylabel(f"{names[b]} ({objectives[b].mode})")
        axes.legend(fontsize="small")
    figure.suptitle(f"{len(scored)} trials; {len(front)} on the Pareto front")
    return _png(figure)


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
