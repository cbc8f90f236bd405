"""A synthetic objective for benchmarks and tests: known optimum, fixed work per trial.

Each trial sleeps ``work_s`` seconds (the stand-in for training), then scores
``score = 1 - (x - 0.3)^2 - (y - 0.7)^2`` (best at x=0.3, y=0.7; ``objective:
"bowl"``), or, with ``objective: "branin"``, minus the Branin function on
x, y in [0, 1] mapped to [-5, 10] x [0, 15] (three optima, best score
-0.397887; the usual test of a model-based search). With
``fail: true`` the trial raises, and with ``kill_self: true`` its process
sends itself SIGKILL, as the kernel's out-of-memory killer would
(``kill_once: true``: only the first time it runs): they exercise unitrain's
handling of failures.

It defines ``tune()`` too, as plugins may: in tuning mode each of the ``steps``
reports a partial score through ``run.report`` (schedulers act on it), and
the full score comes at the last step.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BEST_SCORE", "Hyperparameters", "objective", "train", "tune"]

#: the best score of each objective
BEST_SCORE = {"bowl": 1.0, "branin": -0.397887}


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = 0.0
    y: float = 0.0
    objective: Literal["bowl", "branin"] = "bowl"
    work_s: float = Field(default=0.0, ge=0, le=86_400)
    steps: int = Field(default=1, ge=1, le=100_000, description="intermediate reports")
    fail: bool = False
    kill_self: bool = False
    kill_once: bool = False
    label: Any = None


def train(
    run: Any, dataset: Any, hyperparameter: dict[str, Any], checkpoint: Any, **kwargs: Any
) -> dict[str, float]:
    """Sleep, score, and save the configuration as the "model"."""
    hp = Hyperparameters.model_validate(hyperparameter)
    _fail_if_asked(hp, run)
    score = objective(hp)
    for step in range(hp.steps):
        time.sleep(hp.work_s / hp.steps)
        run.set_progress(step + 1, hp.steps)
    run.log_metric("training", "score", score, epoch=hp.steps - 1)
    output = Path(run.checkpoint_output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "model.json").write_text(json.dumps({"x": hp.x, "y": hp.y, "score": score}))
    return {"score": score}


def tune(
    hyperparameter: dict[str, Any], run: Any, dataset: Any, checkpoint: Any, **kwargs: Any
) -> float:
    """One trial: report a score that grows to the final one, then save the "model"."""
    hp = Hyperparameters.model_validate(hyperparameter)
    _fail_if_asked(hp, run)
    score = objective(hp)
    for step in range(hp.steps):
        time.sleep(hp.work_s / hp.steps)
        if step < hp.steps - 1:  # the last value is the one returned
            run.report({"score": score * (step + 1) / hp.steps}, step=step)
    output = Path(run.checkpoint_output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "model.json").write_text(json.dumps({"x": hp.x, "y": hp.y, "score": score}))
    return score


def objective(hp: Hyperparameters) -> float:
    """The score of one point."""
    if hp.objective == "bowl":
        return 1.0 - (hp.x - 0.3) ** 2 - (hp.y - 0.7) ** 2
    x1, x2 = 15.0 * hp.x - 5.0, 15.0 * hp.y
    branin = (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )
    return -branin


def _fail_if_asked(hp: Hyperparameters, run: Any) -> None:
    if hp.fail:
        raise RuntimeError("this trial was asked to fail (fail=true)")
    marker = Path(run.checkpoint_output).parent / "killed-once"
    if hp.kill_self or (hp.kill_once and not marker.exists()):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
