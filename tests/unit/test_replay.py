"""Replay's comparison of the recorded and the replayed metrics, and the job it runs."""

from __future__ import annotations

import math

from unitrain.job.records import ModelRecord
from unitrain.replay import Replay, compare_metrics


def test_equal_within_the_relative_tolerance():
    verdict = compare_metrics({"acc": 0.9, "loss": 120.0}, {"acc": 0.9 + 1e-9, "loss": 120.0001})
    assert verdict.equal and verdict.different == []
    assert verdict.lines(3, 9)[-1] == (
        "verdict: equal, every metric within a relative tolerance of 1e-06"
    )


def test_a_metric_that_moved_or_is_missing_is_named():
    verdict = compare_metrics({"acc": 0.9, "loss": 0.3, "f1": 0.5}, {"acc": 0.91, "loss": 0.3})
    assert not verdict.equal
    assert verdict.different == ["acc", "f1"]
    lines = verdict.lines(3, 9)
    assert lines[-1].startswith("verdict: different: acc, f1 (not within")
    assert any(line.startswith("acc") and line.endswith("differs") for line in lines)


def test_nan_replays_as_nan():
    assert compare_metrics({"x": math.nan}, {"x": math.nan}).equal
    assert not compare_metrics({"x": math.nan}, {"x": 1.0}).equal


def test_the_replay_job_is_a_training_job_with_the_recorded_configuration():
    record = ModelRecord(
        12, "search", "synthetic", "1", "ab_00003", {"x": 0.25, "seed": 3}, {}, "r", "s", True, 0
    )
    replay = Replay(record, dataset_sha256="f" * 64, checkpoint=4, plugin_version="1.0")
    assert replay.job("again") == {
        "action": "train",
        "plugin": "synthetic",
        "params": {
            "name": "again",
            "dataset": 1,
            "hyperparameter": {"x": 0.25, "seed": 3},
            "checkpoint": 4,
        },
    }
