"""A job's plan: what will run, checked, in a form that travels.

A :class:`JobPlan` (training) or :class:`TuningPlan` (tuning) is made by
``unitrain.planning.plan_job`` from validated parameters once they are checked
against the plugin, the dataset catalog and the model registry; the flow runs
exactly that plan. Plans pickle: they go to Ray workers and between tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unitrain.job.conditions import present
from unitrain.job.objective import Mode, Objective
from unitrain.job.params import TrainParams, TuneConfig
from unitrain.job.promotion import Promotion
from unitrain.job.records import CatalogEntry, EarlierTrial
from unitrain.job.search_space import Distribution

__all__ = ["JobPlan", "TuningPlan"]


@dataclass(frozen=True, kw_only=True)
class JobPlan:
    """A validated job, ready to run. Picklable: it travels to Ray workers."""

    params: TrainParams
    plugin: str
    dataset: CatalogEntry
    checkpoint_id: int | None
    #: fixed hyperparameters (training: with the plugin's defaults filled in)
    hyperparameter: dict[str, Any]
    notes: tuple[str, ...] = ()
    #: what defines the job's work: a run with the same digest resumes it
    digest: str = ""

    @property
    def job(self) -> str:
        """The stored job name."""
        return self.params.stored_name

    @property
    def mode(self) -> Mode:
        return Mode.TRAINING

    @property
    def num_cpus(self) -> float:
        """CPUs of the training task, or of one trial."""
        return self.params.num_cpus or 1.0

    @property
    def num_gpus(self) -> float:
        return self.params.num_gpus or 0.0

    @property
    def promotion(self) -> Promotion | None:
        """The alias the job's model may take (``params.promotion``), every part known."""
        given = self.params.promotion
        if given is None:
            return None
        assert given.metric is not None and given.mode is not None  # TrainParams checks it
        return Promotion(given.alias, given.metric, given.mode, given.min_delta)


@dataclass(frozen=True, kw_only=True)
class TuningPlan(JobPlan):
    """A validated tuning job: the search space and its configuration are never missing."""

    space: tuple[Distribution, ...]
    config: TuneConfig
    total_trials: int
    grid_size: int
    #: the finished trials of the study this search extends (``tune_config.extend``)
    earlier: tuple[EarlierTrial, ...] = ()

    @property
    def mode(self) -> Mode:
        return Mode.TUNING

    @property
    def objective(self) -> Objective:
        return self.config.objective

    @property
    def promotion(self) -> Promotion | None:
        """As a training job's; the metric and the mode default to the search's."""
        given = self.params.promotion
        if given is None:
            return None
        objective = self.objective
        metric = given.metric or objective.metric
        # TrainParams checks a metric other than the search's comes with its mode
        mode = given.mode or objective.mode
        return Promotion(given.alias, metric, mode, given.min_delta)

    @property
    def searched_names(self) -> list[str]:
        return [entry.name for entry in self.space]

    def trial_config(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """What a searcher proposed, as the trial's plugin gets it (conditional entries
        only where their conditions hold)."""
        return present(self.space, proposed)
