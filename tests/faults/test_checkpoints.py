"""Killed work continues from its last checkpoint instead of starting again: a job killed
mid-trial, a trial whose process dies, a training job killed mid-way.

The synthetic plugin's model (``model.json``) lists who trained which of its
steps (``trained_by``: ``[trainer, first step, last step]`` for each time a run
trained it): a run that continued from a checkpoint shows as a second span
starting where the first one stopped.
"""

from __future__ import annotations

import json

import pytest

from tests.faults.helpers import Home, tuning_job, wait_for

pytestmark = pytest.mark.faults


def trained_by(home: Home, job: str, folder: str) -> list[list]:
    model = home.path / "runs" / job / folder / "model.json"
    return list(json.loads(model.read_text())["trained_by"])


def checkpoints_behind(home: Home, job: str) -> dict[str, int]:
    return {
        trial: result.get("checkpoint_iteration", 0)
        for trial, result in home.trial_results(job).items()
    }


def continued(spans: list[list], trainer: str, steps: int) -> int:
    """Where the second span of ``trainer`` began (asserting the spans join up)."""
    assert [span[0] for span in spans] == [trainer, trainer], spans
    assert spans[0][1] == 0 and spans[0][2] == spans[1][1] and spans[1][2] == steps, spans
    return int(spans[1][1])


@pytest.mark.fault("SIGKILL of unitrain run mid-trial: the trials go on from their checkpoints")
def test_a_job_killed_mid_trial_continues_its_trials_from_their_checkpoints(
    shared_home: Home, report
):
    job = tuning_job("fault-kill-mid-trial", trials=2, work_s=12, max_concurrent_trials=2)
    job["hyperparameter"]["steps"] = 12
    running = shared_home.start(job)
    wait_for(
        lambda: (
            len(c := checkpoints_behind(shared_home, job["name"])) == 2 and min(c.values()) >= 3
        ),
        240,
        "three checkpoints of each trial",
    )
    behind = checkpoints_behind(shared_home, job["name"])
    running.kill()
    again = shared_home.run(job)
    assert again.process.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr
    registered = shared_home.registered_trials(job["name"])
    report.record(
        survived=True,
        lost=2 - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert sorted(registered) == sorted(set(registered)) and len(registered) == 2
    for model in again.result()["trial_models"]:
        trial = model["trial_id"]
        spans = trained_by(shared_home, job["name"], f"trials/{trial}/model")
        assert continued(spans, trial, 12) >= behind[trial]  # not from zero
    statuses = shared_home.run_statuses(job["name"])
    assert statuses == ["FINISHED"] * 3, statuses  # the job's run and one per trial, went on


@pytest.mark.fault("a trial's process killed mid-trial, max_failures=1: it goes on")
def test_a_trial_whose_process_dies_continues_from_its_checkpoint(shared_home: Home, report):
    job = tuning_job("fault-trial-dies-mid-way", trials=2, work_s=4, max_failures=1)
    job["hyperparameter"].update(steps=8, kill_at_step=5)
    done = shared_home.run(job)
    assert done.process.returncode == 0, done.stderr[-3000:]
    registered = shared_home.registered_trials(job["name"])
    report.record(
        survived=True,
        lost=2 - len(set(registered)),
        duplicated=len(registered) - len(set(registered)),
    )
    assert sorted(registered) == sorted(set(registered)) and len(registered) == 2
    for model in done.result()["trial_models"]:
        trial = model["trial_id"]
        spans = trained_by(shared_home, job["name"], f"trials/{trial}/model")
        assert continued(spans, trial, 8) == 5  # the checkpoint of the report before it died


@pytest.mark.fault("SIGKILL of a training job mid-way: it goes on from its last checkpoint")
def test_a_training_job_killed_mid_way_continues_from_its_last_checkpoint(
    shared_home: Home, report
):
    job = {
        "name": "fault-kill-training",
        "dataset": 1,
        "plugin": "synthetic",
        "hyperparameter": {"steps": 12, "work_s": 12, "x": 0.3},
    }
    running = shared_home.start(job)
    training = shared_home.path / "runs" / job["name"] / "training"
    about = training / "checkpoint" / ".unitrain-checkpoint.json"

    def reports_behind() -> int:
        try:
            return int(json.loads(about.read_text())["iteration"])
        except (OSError, ValueError):
            return 0

    wait_for(lambda: reports_behind() >= 3, 240, "three checkpoints of the training job")
    behind = reports_behind()
    running.kill()
    again = shared_home.run(job)
    assert again.process.returncode == 0, again.stderr[-3000:]
    assert "continuing the interrupted training" in again.stderr
    registered = shared_home.registered_trials(job["name"])
    report.record(survived=True, lost=1 - len(registered), duplicated=max(len(registered) - 1, 0))
    assert len(registered) == 1
    spans = trained_by(shared_home, job["name"], "training/model")
    assert continued(spans, "training", 12) >= behind
    assert shared_home.run_statuses(job["name"]) == ["FINISHED"]  # one run, that went on
