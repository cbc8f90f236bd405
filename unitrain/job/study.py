"""A study: the rounds of searches that extend each other (``tune_config.extend``).

A tuning job records what it searched (``job.json`` in its MLflow run, from
:func:`job_file`), and each trial as a child run with its hyperparameters as
MLflow parameters. A job that extends it reads those back
(``unitrain.stores.studies``); what is decided here needs no store: whether two
jobs search the same space, and how a stored parameter turns back into the
value the trial ran with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from unitrain.errors import JobValidationError
from unitrain.job.params import TrainParams
from unitrain.job.search_space import Distribution

__all__ = [
    "JOB_FILE",
    "MAX_ROUNDS",
    "as_params",
    "check_same_search",
    "config_from_params",
    "job_file",
]

#: the artifact of a job's MLflow run that holds the job's parameters
JOB_FILE = "job.json"
#: rounds followed back at most (a study of more rounds keeps its latest ones)
MAX_ROUNDS = 100


def job_file(params: TrainParams, plugin: str) -> dict[str, Any]:
    """What a job's run records about the job, for the jobs that extend it."""
    return {"plugin": plugin, "params": params.model_dump(mode="json", exclude_none=True)}


def check_same_search(params: TrainParams, plugin: str, earlier: dict[str, Any], job: str) -> None:
    """Refuse to extend a search of another space, metric, mode or plugin, naming what differs."""
    theirs = earlier["params"]
    config = params.tune_config
    if config is None:
        raise JobValidationError("tune_config.extend: only a tuning job extends a study")
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


def as_params(values: dict[str, Any]) -> dict[str, str]:
    """Hyperparameters as MLflow stores parameters: strings kept, anything else as JSON.

    :func:`config_from_params` reads them back.
    """
    return {key: value if isinstance(value, str) else _json(value) for key, value in values.items()}


def config_from_params(
    entries: Sequence[Distribution], logged: dict[str, str]
) -> dict[str, Any] | None:
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
