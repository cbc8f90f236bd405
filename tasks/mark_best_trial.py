"""Step 5 (tuning mode): pick the best trial and mark it where users look.

The job's MLflow run records the winner (``unitrain.best_trial`` and the best
value), the winner's model version is tagged ``unitrain.best=true`` and
aliased ``best-<job>`` (it is published first if it was not yet), the final
trial table stars it, and the chart of the objective per trial is kept with
the job's run.
"""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from unitrain.job.plan import TuningPlan
from unitrain.job.records import EarlierTrial
from unitrain.reporting.trial_table import TrialTable
from unitrain.stores.mlflow_store import TAG
from unitrain.stores.publisher import ModelPublisher
from unitrain.stores.runs import RunStore
from unitrain.tune.ranking import Ranking, rank
from unitrain.tune.results import TrialOutcome, TuneOutcome, publication_of
from unitrain.ui.summary import objective_figure, trial_points


@task(name="mark_best_trial")
def mark_best_trial(plan: TuningPlan, outcome: TuneOutcome) -> Ranking:
    """Choose the winner (a trial of this search, or of the study it extends) and mark it;
    with several objectives, mark the Pareto front too."""
    objective = plan.objective
    ranking = rank(outcome.trials, plan.config, plan.earlier)
    best = ranking.best
    job_run = outcome.parent_run_id
    runs = RunStore()
    value = best.metrics[objective.metric]
    runs.log(
        job_run,
        metrics=[(f"best_{objective.metric}", value, int(time.time() * 1000), 0)],
        tags={"unitrain.best_trial": best.key},
    )
    publisher = ModelPublisher(plan, job_run, runs=runs)

    def model_of(trial: TrialOutcome | EarlierTrial) -> int | None:
        if isinstance(trial, EarlierTrial):
            return trial.model_id  # registered by its own round
        return outcome.registered.get(trial.trial_id) or publisher.publish(
            publication_of(trial, job_run)
        )

    model_id = model_of(best)
    if isinstance(best, TrialOutcome) and best.mlflow_run_id:
        runs.log(best.mlflow_run_id, tags={TAG.BEST: "true"})
    if model_id is not None:
        publisher.mark_best(model_id)
    if plan.config.several:
        front = [m for m in (model_of(t) for t in ranking.front) if m is not None]
        publisher.mark_front(front)
    figure = objective_figure(trial_points(plan, outcome), objective)
    runs.log_figure(job_run, figure, "tuning.png")
    final = TrialTable(**{**outcome.table.payload(), "best_trial": best.key})
    final.mark(front={t.key for t in ranking.front} if plan.config.several else set(),
               infeasible=set(ranking.infeasible))  # fmt: skip
    final.publish(plan.job)
    runs.log_dict(job_run, final.payload(), "trials.json")
    logger = get_run_logger()
    logger.info("best trial %s: %s=%s with %s", best.key, objective.metric, value, best.config)
    if plan.config.several:
        logger.info("the Pareto front: %s", ", ".join(t.key for t in ranking.front))
    if ranking.infeasible:
        logger.info("%d trial(s) broke a constraint", len(ranking.infeasible))
    return ranking
