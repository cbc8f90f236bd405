"""A synthetic objective for benchmarks and tests: known optimum, fixed work per trial.

Each trial sleeps ``work_s`` seconds (the stand-in for training), then scores
``score = 1 - (x - 0.3)^2 - (y - 0.7)^2`` (best at x=0.3, y=0.7; ``objective:
"bowl"``), or, with ``objective: "branin"``, minus the Branin function on
x, y in [0, 1] mapped to [-5, 10] x [0, 15] (three optima, best score
-0.397887; the usual test of a model-based search), or, with ``objective:
"hartmann6"``, minus the six-dimensional Hartmann function on x, y, x3 ... x6
in [0, 1] (best score 3.32237). With ``objective: "zdt1"`` or ``"zdt2"`` a trial
has two objectives to minimise, ``f1`` and ``f2``: the ZDT problems of Zitzler,
Deb and Thiele (2000) over two variables x, y in [0, 1], whose Pareto fronts
are known (y = 0; ``f2 = 1 - sqrt(f1)``, convex, and ``f2 = 1 - f1^2``, concave).
Every trial's metrics carry a ``cost`` too, ``x + y`` (a stand-in for a
model's latency or size), so that a job can constrain it or trade against it. With
``fail: true`` the trial raises, and with ``kill_self: true`` its process
sends itself SIGKILL, as the kernel's out-of-memory killer would
(``kill_once: true``: only the first time it runs; ``kill_at_step: n``: the
first time it reaches step ``n``): they exercise unitrain's handling of failures.

It defines ``tune()`` too, as plugins may: in tuning mode each of the ``steps``
reports a partial score through ``run.report`` (schedulers act on it), and
the full score comes at the last step (``f1`` and ``f2`` come down to their final
values from twice as much). Before each report it saves its
"model" (``model.json``: the configuration, and ``steps_done`` with who
trained which steps, ``trained_by``), which the report carries as its
checkpoint; given a checkpoint the job saved itself, it goes on from the
steps behind it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BEST_SCORE", "Hyperparameters", "metrics", "objective", "train", "tune"]

log = logging.getLogger(__name__)

#: the best score of each objective
BEST_SCORE = {"bowl": 1.0, "branin": -0.397887, "hartmann6": 3.32237}

# Hartmann-6 (Dixon and Szego, 1978), as in every benchmark of Bayesian optimisation
_ALPHA = (1.0, 1.2, 3.0, 3.2)
_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = 0.0
    y: float = 0.0
    #: the other four coordinates of Hartmann-6 (x, y, x3 ... x6, each in [0, 1])
    x3: float = 0.0
    x4: float = 0.0
    x5: float = 0.0
    x6: float = 0.0
    objective: Literal["bowl", "branin", "hartmann6", "zdt1", "zdt2"] = "bowl"
    work_s: float = Field(default=0.0, ge=0, le=86_400)
    steps: int = Field(default=1, ge=1, le=100_000, description="intermediate reports")
    fail: bool = False
    kill_self: bool = False
    kill_once: bool = False
    #: the first time the run reaches this step, its process sends itself SIGKILL
    kill_at_step: int | None = Field(default=None, ge=0)
    #: lines to log with run.log_message (and, when any, one through the module's logger)
    messages: int = Field(default=0, ge=0, le=1_000_000)
    #: the level of those lines
    message_level: Literal["INFO", "WARNING", "ERROR"] = "INFO"
    #: the size of the "weights" saved with the model each time (a checkpoint's cost)
    checkpoint_mb: float = Field(default=0.0, ge=0, le=4096)
    label: Any = None


def train(
    run: Any, dataset: Any, hyperparameter: dict[str, Any], checkpoint: Any, **kwargs: Any
) -> dict[str, float]:
    """Sleep, score, and save the configuration as the "model"."""
    hp = Hyperparameters.model_validate(hyperparameter)
    _fail_if_asked(hp, run)
    final = metrics(hp)
    _say(hp, run, final)
    score = final.get("score", 0.0)
    done, trained_by = _continued(checkpoint)
    for step in range(done, hp.steps):
        _kill_at(hp, run, step)
        time.sleep(hp.work_s / hp.steps)
        run.set_progress(step + 1, hp.steps)
        if step < hp.steps - 1:  # the model as it stands, then the report: its checkpoint
            _save(run, hp, score, step + 1, trained_by)
            run.report(_partial(final, step + 1, hp.steps), step=step)
    for name, value in final.items():
        run.log_metric("training", name, value, epoch=hp.steps - 1)
    _save(run, hp, score, hp.steps, trained_by)
    return final


def tune(
    hyperparameter: dict[str, Any], run: Any, dataset: Any, checkpoint: Any, **kwargs: Any
) -> dict[str, float]:
    """One trial: report a score that grows to the final one, then save the "model".

    The model is saved before each report, so that each report carries it as
    its checkpoint; a trial that continues from a checkpoint (its own, or
    another trial's under PBT) goes on from the steps behind it.
    """
    hp = Hyperparameters.model_validate(hyperparameter)
    _fail_if_asked(hp, run)
    final = metrics(hp)
    _say(hp, run, final)
    score = final.get("score", 0.0)
    done, trained_by = _continued(checkpoint)
    for step in range(done, hp.steps):
        _kill_at(hp, run, step)
        time.sleep(hp.work_s / hp.steps)
        if step < hp.steps - 1:  # the last value is the one returned
            _save(run, hp, score, step + 1, trained_by)
            run.report(_partial(final, step + 1, hp.steps), step=step)
    _save(run, hp, score, hp.steps, trained_by)
    return final


def _continued(checkpoint: Any) -> tuple[int, list[list[Any]]]:
    """The steps behind a checkpoint this job saved, and who trained them (none otherwise)."""
    if checkpoint is None or not getattr(checkpoint, "continues", False):
        return 0, []
    saved = json.loads((Path(checkpoint.path) / "model.json").read_text())
    return int(saved.get("steps_done", 0)), list(saved.get("trained_by", []))


def _save(run: Any, hp: Hyperparameters, score: float, steps: int, trained_by: list) -> None:
    """The "model": the configuration, its score, and the steps behind it: one
    ``[trainer, first step, last step]`` for each time a trial (or the training job)
    trained it, the checkpoint's ones first."""
    trainer = run.trial_id or "training"
    begun = trained_by[-1][2] if trained_by else 0
    history = [*(list(part) for part in trained_by), [trainer, begun, steps]]
    output = Path(run.checkpoint_output)
    output.mkdir(parents=True, exist_ok=True)
    model = {"x": hp.x, "y": hp.y, "score": score, "steps_done": steps, "trained_by": history}
    (output / "model.json").write_text(json.dumps(model))
    if hp.checkpoint_mb:
        (output / "weights.bin").write_bytes(bytes(int(hp.checkpoint_mb * 2**20)))


def metrics(hp: Hyperparameters) -> dict[str, float]:
    """A trial's final metrics: ``score`` (or ``f1`` and ``f2``), and its ``cost``."""
    if hp.objective in ("zdt1", "zdt2"):
        f1 = hp.x
        g = 1.0 + 9.0 * hp.y
        ratio = f1 / g
        f2 = g * (1.0 - (math.sqrt(ratio) if hp.objective == "zdt1" else ratio**2))
        return {"f1": f1, "f2": f2, "cost": hp.x + hp.y}
    return {"score": objective(hp), "cost": hp.x + hp.y}


def _partial(final: dict[str, float], done: int, steps: int) -> dict[str, float]:
    """The metrics after ``done`` of ``steps``: the score grows to its final value, the
    ZDT objectives come down to theirs, the cost stays."""
    share = done / steps
    partial = dict(final)
    if "score" in final:
        partial["score"] = final["score"] * share
    for name in ("f1", "f2"):
        if name in final:
            partial[name] = final[name] * (2.0 - share)
    return partial


def objective(hp: Hyperparameters) -> float:
    """The score of one point (of a single-objective problem)."""
    if hp.objective == "bowl":
        return 1.0 - (hp.x - 0.3) ** 2 - (hp.y - 0.7) ** 2
    if hp.objective == "hartmann6":
        point = (hp.x, hp.y, hp.x3, hp.x4, hp.x5, hp.x6)
        return sum(
            alpha
            * math.exp(-sum(a * (v - p) ** 2 for a, v, p in zip(row, point, centre, strict=True)))
            for alpha, row, centre in zip(_ALPHA, _A, _P, strict=True)
        )
    x1, x2 = 15.0 * hp.x - 5.0, 15.0 * hp.y
    branin = (
        (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1)
        + 10
    )
    return -branin


def _say(hp: Hyperparameters, run: Any, final: dict[str, float]) -> None:
    for index in range(hp.messages):
        run.log_message(f"message {index + 1} of {hp.messages}", hp.message_level)
    if hp.messages:
        log.log(logging.getLevelNamesMapping()[hp.message_level], "scored %s", final)


def _fail_if_asked(hp: Hyperparameters, run: Any) -> None:
    if hp.fail:
        raise RuntimeError("this trial was asked to fail (fail=true)")
    marker = Path(run.checkpoint_output).parent / "killed-once"
    if hp.kill_self or (hp.kill_once and not marker.exists()):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)


def _kill_at(hp: Hyperparameters, run: Any, step: int) -> None:
    """The process dies at ``kill_at_step``, once: as a node or the OOM killer would take it."""
    if hp.kill_at_step is None or step != hp.kill_at_step:
        return
    marker = Path(run.checkpoint_output).parent / "killed-at-step"
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
