"""A study: the trials of earlier searches that a tuning job extends (``tune_config.extend``).

A tuning job records its parameters in its MLflow run (``job.json``) and each
trial as a child run holding the trial's hyperparameters and metrics. A job
that extends another reads those back: the finished trials of the named job's
latest finished run, and, when that job extended another in turn, theirs too,
so rounds of a study chain. A job that extends itself starts a new round of
its own study after its latest finished round.

The earlier trials are handed to the search algorithm as already evaluated
(see ``unitrain.tune.searchers``) and are shown with the new trials in the
job's table, chart and choice of the best trial. Extending a search needs the
same search space, metric, mode and plugin; the check names what differs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unitrain.errors import JobValidationError
from unitrain.job.search_space import Distribution

if TYPE_CHECKING:
    from unitrain.job.params import TrainParams
    from unitrain.stores.registry import ModelRegistry

__all__ = ["EarlierTrial", "JOB_FILE", "job_file", "load_study"]

#: the artifact of a job's MLflow run that holds the job's parameters
JOB_FILE = "job.json"
#: rounds followed back at most (a study of more rounds keeps its latest ones)
MAX_ROUNDS = 100


@dataclass(frozen=True)
class EarlierTrial:
    """A finished trial of an earlier search, as read back from MLflow."""

    job: str
    trial_id: str
    #: the searched hyperparameters, as the trial ran with them
    config: dict[str, Any]
    metrics: dict[str, float]
    #: the registered model of the trial (None when it was not kept)
    model_id: int | None
    run_id: str
    finished_at: float

    @property
    def key(self) -> str:
        """How the trial is named beside this job's trials: ``<job>/<trial ID>``."""
        return f"{self.job}/{self.trial_id}"

    def objective(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return value if value is not None and math.isfinite(value) else None


def job_file(params: TrainParams, plugin: str) -> dict[str, Any]:
    """What a job's run records about the job, for the jobs that extend it."""
    return {"plugin": plugin, "params": params.model_dump(mode="json", exclude_none=True)}


def load_study(
    params: TrainParams, plugin: str, registry: ModelRegistry
) -> tuple[list[EarlierTrial], list[str]]:
    """The earlier trials ``params`` extends, and notes for the user; raise if it cannot."""
    config = params.tune_config
    if config is None or config.extend is None:
        return [], []
    from unitrain.job.names import encode_job_name

    source = encode_job_name(config.extend)
    own_round = source == params.stored_name
    run = _finished_run(registry, source, before=None)
    if run is None:
        if own_round:
            return [], [
                f"tune_config.extend: job {source!r} has no finished round yet; starting its study"
            ]
        raise JobValidationError(
            f"tune_config.extend: no finished tuning job named {source!r} to extend; "
            "name a tuning job that finished"
        )
    earlier = _read_job_file(run, source)
    _check_same_search(params, plugin, earlier, source)

    trials: list[EarlierTrial] = []
    seen: set[str] = set()
    rounds = 0
    while run is not None and run.info.run_id not in seen and rounds < MAX_ROUNDS:
        seen.add(run.info.run_id)
        rounds += 1
        job = run.data.tags.get("unitrain.job", source)
        trials[:0] = _trials_of(registry, run, job, params)
        extends = _read_job_file(run, job)["params"].get("tune_config", {}).get("extend")
        if extends is None:
            break
        following = encode_job_name(extends)
        run = _finished_run(
            registry, following, before=run.info.start_time if following == job else None
        )
    rounds_text = f"{rounds} earlier round(s)" if rounds > 1 else f"job {source!r}"
    notes = [
        f"tune_config.extend: {len(trials)} earlier trial(s) of {rounds_text} "
        "given to the search as evaluated"
    ]
    return trials, notes


def _finished_run(registry: ModelRegistry, job: str, before: int | None) -> Any:
    """The job's latest finished search run (started before ``before``, in ms), or None."""
    from unitrain.stores.registry import TAG, _quoted

    quoted = _quoted(job)
    if quoted is None:
        return None
    query = (
        f"tags.`{TAG.JOB}` = {quoted} and tags.`{TAG.MODE}` = 'tuning' "
        "and attributes.status = 'FINISHED'"
    )
    if before is not None:
        query += f" and attributes.start_time < {before}"
    runs = registry.client.search_runs(
        [registry.experiment_id()],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=10,
    )
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG.MODE) == "tuning" and "mlflow.parentRunId" not in tags:
            return run
    return None


def _read_job_file(run: Any, job: str) -> dict[str, Any]:
    import mlflow

    try:
        text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/{JOB_FILE}")
        data = json.loads(text)
    except Exception:  # noqa: BLE001 (a run from before jobs recorded themselves)
        raise JobValidationError(
            f"tune_config.extend: job {job!r} did not record its search (no {JOB_FILE} in its "
            "MLflow run)"
        ) from None
    if not isinstance(data, dict) or "params" not in data:
        raise JobValidationError(f"tune_config.extend: job {job!r} has an unreadable {JOB_FILE}")
    return data


def _check_same_search(params: TrainParams, plugin: str, earlier: dict[str, Any], job: str) -> None:
    """Refuse to extend a search of another space, metric, mode or plugin, naming what differs."""
    theirs = earlier["params"]
    config = params.tune_config
    assert config is not None
    their_config = theirs.get("tune_config", {})
    if earlier.get("plugin") != plugin:
        raise JobValidationError(
            f"tune_config.extend: job {job!r} tuned plugin {earlier.get('plugin')!r}, "
            f"this job tunes {plugin!r}; a study extends only the same plugin"
        )
    for key, default in (("metric", None), ("mode", "max")):
        mine, other = getattr(config, key), their_config.get(key, default)
        if mine != other:
            raise JobValidationError(
                f"tune_config.{key}: job {job!r} used {other!r}, this job uses {mine!r}; "
                "a study keeps one metric and mode"
            )
    mine_space = {
        e.name: e.model_dump(mode="json", exclude_none=True) for e in params.hyperparameters or []
    }
    their_space = {e["name"]: e for e in theirs.get("hyperparameters", [])}
    differ = []
    for name in sorted(set(mine_space) | set(their_space)):
        if name not in their_space:
            differ.append(f"{name!r} is only in this job")
        elif name not in mine_space:
            differ.append(f"{name!r} is only in job {job!r}")
        elif mine_space[name] != their_space[name]:
            differ.append(
                f"{name!r} is {_shown(mine_space[name])} here, {_shown(their_space[name])} there"
            )
    if differ:
        raise JobValidationError(
            f"hyperparameters: job {job!r} searched another space ({'; '.join(differ)}); "
            "extending a study needs the same search space"
        )


def _shown(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k != "name"}, sort_keys=True)


def _trials_of(
    registry: ModelRegistry, run: Any, job: str, params: TrainParams
) -> list[EarlierTrial]:
    """The finished trials of one search run that reported the metric, in finishing order."""
    from unitrain.job.search_space import parse_entry
    from unitrain.stores.registry import TAG

    assert params.tune_config is not None
    metric = params.tune_config.metric
    entries = [parse_entry(e.model_dump()) for e in params.hyperparameters or []]
    runs = registry.client.search_runs(
        [registry.experiment_id()],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}' "
        "and attributes.status = 'FINISHED'",
        max_results=50_000,
    )
    models = registry.registered_trials(job, run.info.run_id)
    trials = []
    for child in runs:
        trial_id = child.data.tags.get(TAG.TRIAL, "")
        value = child.data.metrics.get(metric)
        config = _config_of(entries, child.data.params)
        if not trial_id or value is None or not math.isfinite(value) or config is None:
            continue
        trials.append(
            EarlierTrial(
                job=job,
                trial_id=trial_id,
                config=config,
                metrics=dict(child.data.metrics),
                model_id=models.get(trial_id),
                run_id=child.info.run_id,
                finished_at=(child.info.end_time or 0) / 1000,
            )
        )
    return sorted(trials, key=lambda t: (t.finished_at, t.trial_id))


def _config_of(entries: Sequence[Distribution], logged: dict[str, str]) -> dict[str, Any] | None:
    """The searched values back from MLflow's string parameters (None if one does not fit)."""
    config: dict[str, Any] = {}
    for entry in entries:
        text = logged.get(entry.name)
        if text is None:
            return None
        options = getattr(entry, "options", None)
        if options is not None:
            matches = [o for o in options if (o if isinstance(o, str) else _json(o)) == text]
            if not matches:
                return None
            config[entry.name] = matches[0]
            continue
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if not entry.contains(value):
            return None
        config[entry.name] = value
    return config


def _json(value: Any) -> str:
    return json.dumps(value, default=str)
