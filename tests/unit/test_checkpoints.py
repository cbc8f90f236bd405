"""A training job's checkpoints: a report whose folder changed is kept, atomically; one that
changed nothing copies nothing."""

from __future__ import annotations

import json
import os
import time

from unitrain.checkpoints import FolderWatch, TrainingCheckpoints, fingerprint


def test_a_folder_is_new_only_when_its_files_changed(tmp_path):
    folder = tmp_path / "model"
    watch = FolderWatch(folder)
    assert not watch.changed()  # no folder yet
    folder.mkdir()
    assert not watch.changed()  # an empty folder holds no checkpoint
    (folder / "weights.bin").write_bytes(b"1")
    assert watch.changed()
    assert not watch.changed()  # nothing new since
    (folder / ".metadata.json").write_text("{}")  # Ray's own file is not the plugin's
    assert not watch.changed()
    time.sleep(0.01)
    (folder / "weights.bin").write_bytes(b"22")
    assert watch.changed()


def test_a_fingerprint_names_every_file_below_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_text("x")
    (tmp_path / "b").write_text("yy")
    assert [(path, size) for path, size, _ in fingerprint(tmp_path)] == [("b", 2), ("sub/a", 1)]


def test_the_latest_checkpoint_is_the_last_report_that_changed_the_folder(tmp_path):
    output = tmp_path / "model"
    output.mkdir()
    checkpoints = TrainingCheckpoints(tmp_path / "training")
    assert checkpoints.latest() is None
    report = checkpoints.reporter(output)
    report({"loss": 1.0})  # nothing saved yet: no checkpoint
    assert checkpoints.latest() is None
    (output / "model.pt").write_text("epoch 2")
    report({"loss": 0.5, "epoch": 2})
    (output / "model.pt").write_text("epoch 3, being written")
    latest = checkpoints.latest()
    assert latest is not None and latest.continues and latest.iteration == 2
    assert (tmp_path / "training" / "checkpoint" / "model.pt").read_text() == "epoch 2"
    about = json.loads((tmp_path / "training/checkpoint/.unitrain-checkpoint.json").read_text())
    assert about["metrics"] == {"loss": 0.5}
    report({"loss": 0.4})  # the folder changed since: report 3 is kept
    assert checkpoints.latest().iteration == 3


def test_a_run_that_continues_counts_its_reports_on(tmp_path):
    output = tmp_path / "model"
    output.mkdir()
    checkpoints = TrainingCheckpoints(tmp_path / "training")
    report = checkpoints.reporter(output, after=7)
    (output / "model.pt").write_text("x")
    report({})
    assert checkpoints.latest().iteration == 8


def test_a_crash_while_a_checkpoint_is_swapped_in_keeps_the_one_before(tmp_path):
    output = tmp_path / "model"
    output.mkdir()
    (output / "model.pt").write_text("first")
    checkpoints = TrainingCheckpoints(tmp_path / "training")
    checkpoints.save(output, 1, {})
    # as if the process died between moving the old checkpoint aside and the new one in
    os.rename(checkpoints.current, tmp_path / "training" / "checkpoint.old")
    (tmp_path / "training" / f"checkpoint.new-{os.getpid()}").mkdir()
    latest = checkpoints.latest()
    assert latest is not None and latest.iteration == 1
    assert (tmp_path / "training" / "checkpoint.old" / "model.pt").read_text() == "first"
    (output / "model.pt").write_text("second")
    checkpoints.save(output, 2, {})
    assert checkpoints.latest().iteration == 2
    assert not (tmp_path / "training" / "checkpoint.old").exists()
