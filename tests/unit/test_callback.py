from types import SimpleNamespace

from unitrain.reporting import trial_table
from unitrain.tune.callback import TrialsLoggingCallback


def fake_trial(trial_id, **config):
    return SimpleNamespace(trial_id=trial_id, config=config, last_result={}, status="PENDING")


class Clock:
    """A monotonic clock whose origin is whatever the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Step:
    def __init__(self):
        self.updates = []

    def update(self, done, total):
        self.updates.append((done, total))


def callback(clock, *, progress=None, total=300, interval_s=3.0):
    return TrialsLoggingCallback(
        job="j",
        metric="score",
        hyperparameters=["x"],
        total_trials=total,
        progress=progress,
        interval_s=interval_s,
        clock=clock,
    )


def finish_one(cb, index):
    trial = fake_trial(f"t{index}", x=index)
    cb.on_trial_start(0, [], trial)
    trial.last_result = {
        "score": index / 300,
        "loss": 1.0,
        "time_total_s": 3.0,
        "a": 1,
        "b": 2,
        "c": 3,
    }
    cb.on_trial_result(0, [], trial, trial.last_result)
    cb.on_trial_complete(0, [], trial)


def test_snapshots_are_throttled_and_the_final_table_is_complete(monkeypatch):
    published = []
    monkeypatch.setattr(
        trial_table.TrialTable, "publish", lambda self, job: published.append(self.rows())
    )
    step = Step()
    cb = callback(Clock(0.5), progress=step, interval_s=3600)
    for index in range(300):
        finish_one(cb, index)
    table = cb.finish()
    assert len(published) == 1  # the first snapshot; the interval never passed after it
    rows = table.rows()
    assert len(rows) == 300 and {r["status"] for r in rows} == {"TERMINATED"}
    assert table.metrics[0] == "score" and len(table.metrics) == 4
    assert "time_total_s" not in table.metrics
    assert step.updates[-1] == (300, 300)


def test_the_first_snapshot_is_sent_whatever_the_clock_origin(monkeypatch):
    # A machine booted a second ago has a monotonic clock near zero.
    for origin in (0.0, 1.0, 1e9):
        published: list = []
        monkeypatch.setattr(
            trial_table.TrialTable,
            "publish",
            lambda self, job, sent=published: sent.append(self.rows()),
        )
        clock = Clock(origin)
        cb = callback(clock)
        finish_one(cb, 0)
        cb.finish()
        assert len(published) == 1, origin


def test_a_snapshot_is_sent_again_once_the_interval_passed(monkeypatch):
    published = []
    monkeypatch.setattr(
        trial_table.TrialTable, "publish", lambda self, job: published.append(len(self.rows()))
    )
    clock = Clock(10.0)
    cb = callback(clock, interval_s=3.0)
    finish_one(cb, 0)
    clock.now = 12.0
    finish_one(cb, 1)  # within the interval: not sent
    if cb._inflight is not None:
        cb._inflight.result()
    clock.now = 13.5
    finish_one(cb, 2)
    cb.finish()
    assert published == [1, 3]


def test_errors_are_shown_as_error(monkeypatch):
    monkeypatch.setattr(trial_table.TrialTable, "publish", lambda self, job: None)
    cb = callback(Clock(0.0), total=1)
    trial = fake_trial("bad", x=1)
    cb.on_trial_error(0, [], trial)
    assert cb.finish().trials["bad"]["status"] == "ERROR"


def test_reported_values_are_kept_per_trial(monkeypatch):
    monkeypatch.setattr(trial_table.TrialTable, "publish", lambda self, job: None)
    cb = callback(Clock(0.0), total=1)
    trial = fake_trial("t", x=0.25)
    cb.on_trial_start(0, [], trial)
    cb.on_trial_result(0, [], trial, {"score": 0.1, "epoch": 0})
    cb.on_trial_result(0, [], trial, {"loss": 0.5, "epoch": 1})
    cb.finish()
    assert cb.reported("t") == {"score": 0.1, "loss": 0.5}
