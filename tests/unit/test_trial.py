"""What a trial continues from: its own latest checkpoint, or (PBT) another trial's."""

from __future__ import annotations

from types import SimpleNamespace

from unitrain.tune.results import TrialResult, outcome_of
from unitrain.tune.trial import _lineage_note, _starting_point


class RayCheckpoint(SimpleNamespace):
    def get_metadata(self):
        return self.metadata


def ray_checkpoint(path, trial_id, iteration):
    return RayCheckpoint(path=str(path), metadata={"trial_id": trial_id, "iteration": iteration})


def earlier(tmp_path, *, checkpoint_iteration=0, hyperparameters=None):
    folder = tmp_path / "own"
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text("{}")
    return TrialResult(
        "t1",
        "RUNNING",
        hyperparameters=hyperparameters or {"lr": 0.1, "epochs": 4},
        checkpoint=str(folder) if checkpoint_iteration else "",
        checkpoint_iteration=checkpoint_iteration,
    )


def test_a_new_trial_starts_from_nothing(tmp_path):
    assert _starting_point("t1", None, None, {"lr": 0.1}, tmp_path) == (None, None)


def test_a_clone_continues_from_its_donor_and_says_what_changed(tmp_path):
    donor = ray_checkpoint(tmp_path, "t0", 4)
    new = {"lr": 0.2, "epochs": 4}
    start, lineage = _starting_point("t1", donor, earlier(tmp_path), new, tmp_path)
    assert start.trial_id == "t0" and start.iteration == 4 and start.continues
    assert lineage == {"from": "t0", "iteration": 4, "changed": {"lr": [0.1, 0.2]}}
    assert _lineage_note(lineage) == "t0@4: lr 0.1 -> 0.2"


def test_a_restarted_trial_continues_from_its_newest_own_checkpoint(tmp_path):
    # Ray knows the checkpoint of report 2; the trial wrote down the one of report 5
    ray_knows = ray_checkpoint(tmp_path / "ray", "t1", 2)
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "model.json").write_text("{}")
    start, lineage = _starting_point(
        "t1", ray_knows, earlier(tmp_path, checkpoint_iteration=5), {}, tmp_path
    )
    assert start.iteration == 5 and start.path == str(tmp_path / "own") and lineage is None
    # the other way round: Ray's is newer
    newer = ray_checkpoint(tmp_path / "ray", "t1", 9)
    start, _ = _starting_point("t1", newer, earlier(tmp_path, checkpoint_iteration=5), {}, tmp_path)
    assert start.iteration == 9
    # a checkpoint written down but gone (deleted as newer ones came) is not used
    gone = earlier(tmp_path, checkpoint_iteration=5)
    gone = TrialResult(**{**gone.__dict__, "checkpoint": str(tmp_path / "missing")})
    assert _starting_point("t1", None, gone, {}, tmp_path) == (None, None)


def test_a_trial_a_scheduler_stopped_has_its_last_checkpoint_as_its_model(tmp_path):
    checkpoint = tmp_path / "checkpoint_000003"
    checkpoint.mkdir()
    own = TrialResult("t1", "RUNNING", model_dir="", hyperparameters={"lr": 0.1})
    outcome = outcome_of(
        trial_id="t1",
        own=own,
        ray_metrics={"acc": 0.9, "training_iteration": 4},
        ray_error=None,
        reported={"acc": 0.9},
        metric="acc",
        config={"lr": 0.1},
        logdir="/logs",
        checkpoint=str(checkpoint),
    )
    assert outcome.has_model and outcome.model_dir == str(checkpoint)
    assert outcome.ended == "KILLED" and outcome.stopped_at == 4
    assert outcome.model_tags == {"unitrain.stopped_at_iteration": "4"}
    without = outcome_of(
        trial_id="t2",
        own=TrialResult("t2", "RUNNING"),
        ray_metrics={"acc": 0.5, "training_iteration": 1},
        ray_error=None,
        reported={},
        metric="acc",
        config={},
        logdir="/logs",
    )
    assert not without.has_model
    assert "save it into run.checkpoint_output before each run.report" in without.why_no_model


def test_a_checkpoint_pruned_to_its_metadata_is_not_continued_from(tmp_path):
    pruned = tmp_path / "t1" / "checkpoint_000000"
    pruned.mkdir(parents=True)
    (pruned / ".metadata.json").write_text('{"trial_id": "t1", "iteration": 1}')
    own = earlier(tmp_path, checkpoint_iteration=4)
    start, _ = _starting_point("t1", ray_checkpoint(pruned, "t1", 1), own, {}, tmp_path)
    assert start.path == own.checkpoint and start.iteration == 4


def test_a_clone_whose_donor_pruned_the_checkpoint_takes_the_donor_s_newest(tmp_path):
    donor = tmp_path / "t0"
    for index, iteration in ((0, 2), (1, 4)):
        folder = donor / f"checkpoint_00000{index}"
        folder.mkdir(parents=True)
        (folder / ".metadata.json").write_text(f'{{"trial_id": "t0", "iteration": {iteration}}}')
    (donor / "checkpoint_000001" / "model.json").write_text("{}")  # only the newest has files
    asked = ray_checkpoint(donor / "checkpoint_000000", "t0", 2)
    start, lineage = _starting_point("t1", asked, None, {"lr": 1}, tmp_path)
    assert start.path == str(donor / "checkpoint_000001") and start.iteration == 4
    assert lineage["from"] == "t0"
