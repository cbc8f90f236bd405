"""The markdown summary a finished job leaves in the Prefect UI.

It says what came out (the model ID and its metrics), links to the MLflow runs
and model versions, and for a tuning job shows the best trial and a chart of
the objective per trial in the order trials finished, with the best so far,
which reads faster than the trial table. ``UNITRAIN_MLFLOW_UI_URL`` sets the
MLflow UI the links point at (default ``http://127.0.0.1:5000``, where
``unitrain serve`` and ``unitrain ui mlflow`` put it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from unitrain.job.objective import Objective
from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.reporting.trial_table import artifact_key
from unitrain.settings import settings
from unitrain.stores.job_state import JobFolder
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore
from unitrain.tune.ranking import Ranking
from unitrain.tune.results import TuneOutcome

__all__ = [
    "SearchReport",
    "TrialPoint",
    "objective_chart",
    "objective_figure",
    "publish_summary",
    "render_summary",
    "trial_points",
]

log = logging.getLogger(__name__)
BAR_WIDTH = 30
#: a longer chart shows only the trials that improved on the best so far, and the last
MAX_CHART_ROWS = 50
#: the trial models listed, best first; the registry has the others
MAX_MODEL_ROWS = 20


@dataclass(frozen=True)
class TrialPoint:
    """One trial as the chart sees it."""

    trial_id: str
    finished_at: float
    objective: float | None
    model_id: int | None = None
    run_id: str = ""


def trial_points(
    plan: TuningPlan, outcome: TuneOutcome, model_ids: dict[str, int] | None = None
) -> list[TrialPoint]:
    """Every trial of the search (the study's earlier ones first) as the chart sees it."""
    metric, models = plan.objective.metric, model_ids or {}
    points = [
        TrialPoint(t.key, t.finished_at, t.objective(metric), t.model_id, t.run_id)
        for t in plan.earlier
    ]
    points += [
        TrialPoint(
            t.trial_id, t.finished_at, t.objective(metric), models.get(t.trial_id), t.mlflow_run_id
        )
        for t in outcome.trials
    ]
    return points


@dataclass(frozen=True)
class SearchReport:
    """What a tuning job's summary shows besides its model: the search."""

    objective: Objective
    trials: Sequence[TrialPoint]
    #: why the search ended
    stopped: str = ""
    #: what the trials used: cpu_hours and gpu_hours
    compute: dict[str, float] = field(default_factory=dict)
    #: each plot's title and its URL
    plots: dict[str, str] = field(default_factory=dict)
    #: the jobs of the study this search extends, and how many of their trials it took
    earlier_jobs: tuple[str, ...] = ()
    earlier_trials: int = 0
    #: several objectives: every one, and the Pareto front's trials with their metrics
    objectives: tuple[Objective, ...] = ()
    front: tuple[tuple[str, dict[str, float]], ...] = ()
    #: the constraints, and the trials that broke one
    constraints: tuple[str, ...] = ()
    infeasible: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        plan: TuningPlan,
        outcome: TuneOutcome,
        model_ids: dict[str, int],
        plots: dict[str, str],
        ranking: Ranking | None = None,
    ) -> SearchReport:
        front = ranking.front if ranking is not None and plan.config.several else []
        return cls(
            objective=plan.objective,
            trials=trial_points(plan, outcome, model_ids),
            stopped=outcome.stopped,
            compute=dict(outcome.compute),
            plots=plots,
            earlier_jobs=tuple(dict.fromkeys(t.job for t in plan.earlier)),
            earlier_trials=len(plan.earlier),
            objectives=plan.config.objectives if front else (),
            front=tuple((t.key, dict(t.metrics)) for t in front),
            constraints=tuple(c.describe() for c in plan.config.constraints),
            infeasible=tuple(ranking.infeasible) if ranking is not None else (),
        )


def _mlflow_ui() -> str:
    return settings().mlflow_ui_url


def _run_link(experiment_id: str, run_id: str, text: str) -> str:
    return f"[{text}]({_mlflow_ui()}/#/experiments/{experiment_id}/runs/{run_id})"


def _model_link(registered_model: str, model_id: Any) -> str:
    return f"[model {model_id}]({_mlflow_ui()}/#/models/{registered_model}/versions/{model_id})"


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def objective_chart(points: Sequence[TrialPoint], metric: str, mode: str) -> list[str]:
    """A markdown table drawn as a bar chart: objective per trial, best so far."""
    finished = sorted(
        ((p, p.objective) for p in points if p.objective is not None),
        key=lambda pair: pair[0].finished_at,
    )
    if not finished:
        return ["_No trial reported the objective._"]
    values = [value for _, value in finished]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    lines = [f"| # | trial | {metric} | | best so far |", "|---:|---|---:|---|---:|"]
    only_improvements = len(finished) > MAX_CHART_ROWS
    if only_improvements:
        lines.insert(
            0, f"_{len(finished)} trials: those that improved on the best, and the last._\n"
        )
    objective = Objective(metric, mode)  # type: ignore[arg-type]
    best: float | None = None
    for index, (point, value) in enumerate(finished, start=1):
        improved = best is None or objective.better(value, best)
        best = value if improved else best
        if only_improvements and not improved and index != len(finished):
            continue
        length = 1 + round((value - low) / span * (BAR_WIDTH - 1))
        bar = "█" * length
        mark = " ◀ new best" if improved else ""
        lines.append(f"| {index} | `{point.trial_id}` | {value:.4g} | `{bar}`{mark} | {best:.4g} |")
    return lines


def _best_models(
    points: Sequence[TrialPoint], objective: Objective
) -> tuple[list[TrialPoint], int]:
    """The trial models worth listing, best first, and how many are left out."""
    with_model = [p for p in points if p.model_id is not None]
    if len(with_model) <= MAX_MODEL_ROWS:
        return with_model, 0
    ranked = sorted(with_model, key=lambda p: objective.rank(p.objective))
    return ranked[:MAX_MODEL_ROWS], len(with_model) - MAX_MODEL_ROWS


def objective_figure(points: Sequence[TrialPoint], objective: Objective) -> Any:
    """The same chart as a matplotlib figure (kept with the job's MLflow run).

    Made without pyplot: no global figure to close, and a faster import.
    """
    from matplotlib.figure import Figure

    metric = objective.metric
    finished = sorted((p for p in points if p.objective is not None), key=lambda p: p.finished_at)
    values = [float(p.objective) for p in finished if p.objective is not None]
    best_so_far = [objective.best(values[: i + 1]) for i in range(len(values))]
    figure = Figure(figsize=(7, 3.5), dpi=100)
    axes = figure.add_subplot()
    axes.scatter(range(1, len(values) + 1), values, s=14, label=f"{metric} of the trial")
    axes.step(range(1, len(values) + 1), best_so_far, where="post", color="C3", label="best so far")
    axes.set_xlabel("trials, in the order they finished")
    axes.set_ylabel(metric)
    axes.legend(loc="best")
    figure.tight_layout()
    return figure


def render_summary(
    plan: JobPlan,
    result: dict[str, Any],
    *,
    metrics: dict[str, float],
    experiment_id: str = "",
    run_id: str = "",
    registered_model: str = "unitrain",
    search: SearchReport | None = None,
    storage_bytes: int | None = None,
) -> str:
    """The summary's markdown; ``search`` adds a tuning job's sections."""
    model_id = result.get("model_id")
    lines = [
        f"# Job `{plan.job}`: model {model_id}",
        "",
        f"- mode: **{plan.mode}**, plugin `{plan.plugin}`, "
        f"dataset {plan.dataset.id} ({plan.dataset.name})",
        f"- started from: {f'model {plan.checkpoint_id}' if plan.checkpoint_id else 'scratch'}",
        f"- result: {_model_link(registered_model, model_id)}"
        + (f", {_run_link(experiment_id, run_id, 'MLflow run')}" if run_id else ""),
    ]
    promotion = result.get("promotion")
    if promotion:
        lines.append(f"- promotion: {promotion['message']}")
    if storage_bytes is not None:
        lines.append(
            f"- storage: its checkpoints and model folders take {_size(storage_bytes)} "
            "(`UNITRAIN_STORAGE`)"
        )
    lines.append("")
    if search is not None:
        lines += _search_header(search, result["best_trial"])
    lines += [
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {_format(v)} |" for k, v in sorted(metrics.items()) if math.isfinite(v)),
        "",
    ]
    if search is not None:
        lines += _search_trials(search, plan.job, experiment_id, registered_model)
    return "\n".join(lines) + "\n"


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} bytes"


def _search_header(search: SearchReport, best: dict[str, Any]) -> list[str]:
    objective = search.objective
    lines = [
        f"## Best trial `{best.get('trial_id', '')}` ({objective.mode} {objective.metric})",
        "",
        "| hyperparameter | value |",
        "|---|---|",
        *(f"| {k} | {_format(v)} |" for k, v in sorted(best["config"].items())),
        "",
    ]
    if search.earlier_trials:
        jobs = ", ".join(f"`{job}`" for job in search.earlier_jobs)
        lines += [
            f"- extends a study: {search.earlier_trials} earlier trial(s) of {jobs}, "
            "given to the search as evaluated and ranked with this job's trials",
        ]
    if search.stopped:
        lines += [
            f"- the search stopped: {search.stopped}",
            f"- compute used: {search.compute.get('cpu_hours', 0.0):.3g} CPU-hours, "
            f"{search.compute.get('gpu_hours', 0.0):.3g} GPU-hours",
            "",
        ]
    if search.constraints:
        lines += [
            f"- constraints: {', '.join(search.constraints)}; "
            f"{len(search.infeasible)} trial(s) broke one (never the best, never on the front)",
            "",
        ]
    if search.plots:
        links = ", ".join(f"[{title}]({url})" for title, url in search.plots.items())
        lines += [f"- plots (the job's MLflow run, `plots/`): {links}", ""]
    if search.front:
        names = [o.metric for o in search.objectives]
        lines += [
            f"## Pareto front ({', '.join(f'{o.mode} {o.metric}' for o in search.objectives)})",
            "",
            f"_{len(search.front)} trial(s) no other trial beats on every objective; the "
            f"model is the front's best {search.objective.metric}._",
            "",
            "| trial | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
            *(
                f"| `{key}` | " + " | ".join(_format(metrics.get(n, "")) for n in names) + " |"
                for key, metrics in search.front
            ),
            "",
        ]
    return lines


def _search_trials(
    search: SearchReport, job: str, experiment_id: str, registered_model: str
) -> list[str]:
    objective = search.objective
    listed, left_out = _best_models(search.trials, objective)
    lines = [
        f"## {objective.metric} per trial, in the order trials finished",
        "",
        *objective_chart(search.trials, objective.metric, objective.mode),
        "",
        "## Trial models",
        "",
        "| trial | model | MLflow run |",
        "|---|---|---|",
        *(
            f"| `{p.trial_id}` | {_model_link(registered_model, p.model_id)} | "
            f"{_run_link(experiment_id, p.run_id, p.run_id[:8]) if p.run_id else ''} |"
            for p in listed
        ),
    ]
    if left_out:
        lines += [
            "",
            f"_The {len(listed)} best of {len(listed) + left_out} trial models; "
            f"all of them: `unitrain models list --job {job}`._",
        ]
    return lines


def publish_summary(
    plan: JobPlan,
    result: dict[str, Any],
    *,
    metrics: dict[str, float],
    run_id: str = "",
    search: SearchReport | None = None,
) -> None:
    """Create the job's summary artifact; a failure here never fails the job."""
    from prefect.artifacts import create_markdown_artifact

    try:
        registry = ModelRegistry()
        text = render_summary(
            plan,
            result,
            metrics=metrics,
            run_id=run_id,
            search=search,
            experiment_id=RunStore(registry.store).experiment_id(),
            registered_model=registry.name,
            storage_bytes=JobFolder(plan.job).disk_usage(),
        )
        create_markdown_artifact(
            text, key=artifact_key("summary", plan.job), description=f"Result of job {plan.job}"
        )
    except Exception as error:
        log.warning("could not publish the summary: %s", error)
