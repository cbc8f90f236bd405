"""Publishing a model: the one place a model version is made, described, tagged and marked best.

A job's models become versions of the registered model (see
``unitrain.stores.registry``) through a :class:`ModelPublisher`: the training
run's model at the end of a training job, and each trial's model in a search,
as the trial ends (the recorder, while the search goes on) or at the end
(``keep_models``: only then is it known which are kept). Which of the two is
decided here, once (:attr:`ModelPublisher.as_trials_end`).

Publishing is idempotent by its key, the job's run and the trial: a model
already registered for them is returned, never registered again, so a
retried step or a resumed job adds no second version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from unitrain.job.objective import Objective
from unitrain.job.plan import JobPlan
from unitrain.stores.mlflow_store import TAG
from unitrain.stores.registry import ModelRegistry
from unitrain.stores.runs import RunStore
from unitrain.stores.writes import ModelVersion

__all__ = ["ModelPublisher", "Publication", "ScoredTrial"]


class ScoredTrial(Protocol):
    """What choosing the kept models asks of a trial."""

    @property
    def trial_id(self) -> str: ...

    @property
    def has_model(self) -> bool: ...

    def objective(self, metric: str) -> float | None: ...


Trial = TypeVar("Trial", bound=ScoredTrial)


@dataclass(frozen=True)
class Publication:
    """One model folder to publish, with what its version records."""

    #: the MLflow run whose artifacts receive the model's files
    run_id: str
    model_dir: str
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    trial_id: str = ""
    artifact_path: str = "model"
    #: tags the version gets besides the job's own
    tags: dict[str, str] = field(default_factory=dict)


class ModelPublisher:
    """Makes the model versions of one run of a job (``job_run``: the job's MLflow run)."""

    def __init__(
        self,
        plan: JobPlan,
        job_run: str,
        *,
        registry: ModelRegistry | None = None,
        runs: RunStore | None = None,
        resumed: bool = True,
    ) -> None:
        self.plan = plan
        self.job_run = job_run
        self.registry = registry or ModelRegistry()
        self.runs = runs or RunStore(self.registry.store)
        # trial ID -> model ID of what this job run registered; a new run has none yet
        self._known: dict[str, int] | None = None if resumed else {}

    # -- the decision --------------------------------------------------------

    @property
    def keep_models(self) -> int | None:
        config = getattr(self.plan, "config", None)
        return getattr(config, "keep_models", None)

    @property
    def as_trials_end(self) -> bool:
        """Whether each trial's model is published as the trial ends (else at the end, once
        it is known which ``keep_models`` are kept)."""
        return self.keep_models is None

    def kept(
        self, trials: Sequence[Trial], must_keep: Sequence[str], objective: Objective
    ) -> list[Trial]:
        """The trials whose models are published: every one with a model, or the
        ``keep_models`` best by ``objective``, ``must_keep`` (the best trial, a Pareto
        front) always among them; in trial order."""
        with_model = [trial for trial in trials if trial.has_model]
        keep = self.keep_models
        if keep is None or len(with_model) <= keep:
            return with_model
        first = set(must_keep)

        def rank(trial: Trial) -> tuple[bool, tuple[bool, float]]:
            return (trial.trial_id not in first, objective.rank(trial.objective(objective.metric)))

        chosen = {t.trial_id for t in sorted(with_model, key=rank)[: max(keep, len(first))]}
        return [trial for trial in with_model if trial.trial_id in chosen]

    def mark_front(self, model_ids: Sequence[int]) -> None:
        """Tag the models of a Pareto front ``unitrain.pareto=true``."""
        for model_id in model_ids:
            self.registry.tag(model_id, TAG.PARETO, "true")

    # -- versions ------------------------------------------------------------

    @property
    def known(self) -> dict[str, int]:
        """Trial ID -> model ID of the models published for this job run ('' for training)."""
        if self._known is None:
            self._known = self.registry.registered_trials(self.plan.job, self.job_run)
        return self._known

    def version(
        self,
        *,
        trial_id: str,
        hyperparameters: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """The version a model of this job gets: its description and tags."""
        return ModelVersion(
            registered_model=self.registry.name,
            artifact_path="model",
            description=f"job {self.plan.job}" + (f", trial {trial_id}" if trial_id else ""),
            tags={
                TAG.JOB: self.plan.job,
                TAG.PLUGIN: self.plan.plugin,
                TAG.DATASET: str(self.plan.dataset.id),
                TAG.TRIAL: trial_id,
                TAG.HYPERPARAMETERS: json.dumps(hyperparameters, sort_keys=True, default=str),
                TAG.METRICS: json.dumps(metrics, sort_keys=True),
                TAG.JOB_RUN: self.job_run,
                **(tags or {}),
            },
        )

    def publish(self, publication: Publication) -> int:
        """Upload the model's files into its run and register them; return the model ID.

        A model already published for this job run and trial is returned as it is.
        """
        trial_id = publication.trial_id
        if trial_id in self.known:
            return self.known[trial_id]
        self.runs.log_artifacts(
            publication.run_id, publication.model_dir, publication.artifact_path
        )
        spec = self.version(
            trial_id=trial_id,
            hyperparameters=publication.hyperparameters,
            metrics=publication.metrics,
            tags=publication.tags,
        )
        model_id = self.registry.create_version(
            spec,
            source=f"{self.runs.artifact_uri(publication.run_id)}/{publication.artifact_path}",
            run_id=publication.run_id,
            request=self._request(trial_id),
        )
        self.known[trial_id] = model_id
        return model_id

    def remember(self, trial_id: str, model_id: int) -> None:
        """A model published with its run, in one write (see ``unitrain.stores.writers``)."""
        self.known[trial_id] = model_id

    def mark_best(self, model_id: int) -> None:
        """Tag ``model_id`` as its job's best (and no other), and point ``best-<job>`` at it."""
        self.registry.mark_best(model_id, self.plan.job)

    def _request(self, trial_id: str) -> str:
        # The same for every attempt at this model: a lost reply is found again.
        return hashlib.sha256(f"{self.job_run}\0{trial_id}".encode()).hexdigest()[:32]
