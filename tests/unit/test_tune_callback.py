from types import SimpleNamespace

from unitrain import trial_table
from unitrain.tune_callback import TrialsLoggingCallback


def fake_trial(trial_id, **config):
    return SimpleNamespace(trial_id=trial_id, config=config, last_result={}, status="PENDING")


def test_snapshots_are_throttled_and_the_final_table_is_complete(monkeypatch):
    published = []
    monkeypatch.setattr(
        trial_table.TrialTable, "publish", lambda self, job: published.append(self.rows())
    )
    steps = []

    class Step:
        def update(self, done, total):
            steps.append((done, total))

    callback = TrialsLoggingCallback(
        job="j",
        metric="score",
        hyperparameters=["x"],
        total_trials=300,
        progress=Step(),
        interval_s=3600,
    )
    for index in range(300):
        trial = fake_trial(f"t{index}", x=index)
        callback.on_trial_start(0, [], trial)
        trial.last_result = {
            "score": index / 300,
            "loss": 1.0,
            "time_total_s": 3.0,
            "a": 1,
            "b": 2,
            "c": 3,
        }
        callback.on_trial_result(0, [], trial, trial.last_result)
        callback.on_trial_complete(0, [], trial)
    table = callback.finish()
    assert len(published) == 1  # the first snapshot; the interval never passed after it
    rows = table.rows()
    assert len(rows) == 300 and {r["status"] for r in rows} == {"TERMINATED"}
    assert table.metrics[0] == "score" and len(table.metrics) == 4
    assert "time_total_s" not in table.metrics
    assert steps[-1] == (300, 300)


def test_errors_are_shown_as_error(monkeypatch):
    monkeypatch.setattr(trial_table.TrialTable, "publish", lambda self, job: None)
    callback = TrialsLoggingCallback(
        job="j",
        metric="score",
        hyperparameters=["x"],
        total_trials=1,
        progress=None,
        interval_s=3600,
    )
    trial = fake_trial("bad", x=1)
    callback.on_trial_error(0, [], trial)
    assert callback.finish().trials["bad"]["status"] == "ERROR"
