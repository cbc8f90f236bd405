import pytest

from unitrain.reporting import progress as progress_module
from unitrain.reporting.progress import WEIGHTS, JobProgress


def test_weights_sum_to_100():
    for weights in WEIGHTS.values():
        assert sum(weights.values()) == 100


def test_steps_fill_their_share_in_order():
    job = JobProgress(mode="training")
    assert job.overall("dataset", 1.0) == 20
    assert job.overall("train", 0.5) == pytest.approx(20 + 37.5)
    assert job.overall("model_upload", 1.0) == 100
    tuning = JobProgress(mode="tuning")
    assert tuning.overall("trials", 3 / 12) == pytest.approx(20 + 75 * 0.25)


def test_unknown_step_is_rejected():
    with pytest.raises(KeyError, match="'trials' is not a step of a training job"):
        JobProgress(mode="training").step("trials")


def test_updates_are_throttled_but_completion_always_sent(monkeypatch):
    sent: list[float] = []
    monkeypatch.setattr(progress_module, "_publish", lambda artifact, value: sent.append(value))
    monkeypatch.setattr(progress_module, "_publish_step", lambda artifact, category, value: "step")
    step = JobProgress(mode="training", artifact_id="a").step("train")
    for i in range(1, 10_001):
        step.update(i, 10_000)
    assert len(sent) < 20
    assert sent[-1] == 95.0
