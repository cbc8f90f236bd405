from unitrain.reporting.trial_table import MAX_ROWS, TrialTable, artifact_key


def table(n: int, mode: str = "max", running: int = 0) -> TrialTable:
    trials = {
        f"t{i:04d}": {"status": "TERMINATED", "x": i / n, "score": float(i % 97)} for i in range(n)
    }
    for i in range(running):
        trials[f"r{i}"] = {"status": "RUNNING", "x": 0.5}
    trials["failed"] = {"status": "ERROR", "x": 0.1}
    return TrialTable(trials, hyperparameters=["x"], metrics=["score"], mode=mode)


def test_a_small_table_keeps_every_trial_in_trial_order():
    small = table(5)
    assert [row["trial_id"] for row in small.rows(limit=MAX_ROWS)] == [*small.trials]


def test_a_big_table_shows_the_best_then_the_running_then_counts_the_rest():
    big = table(1000, running=3)
    rows = big.rows(limit=MAX_ROWS)
    assert len(rows) == MAX_ROWS
    shown = rows[:-1]
    scores = [row["score"] for row in shown if row["status"] == "TERMINATED"]
    assert scores == sorted(scores, reverse=True) and scores[0] == 96.0
    assert [row["trial_id"] for row in shown[-3:]] == ["r0", "r1", "r2"]
    closing = rows[-1]
    assert closing["trial_id"] == f"... {1004 - (MAX_ROWS - 1)} more"
    assert "1 error" in closing["status"] and "terminated" in closing["status"]


def test_minimising_ranks_the_lowest_first_and_the_best_trial_leads():
    big = table(200, mode="min")
    big.best_trial = "t0150"
    rows = big.rows(limit=10)
    assert rows[0]["trial_id"] == "t0150" and rows[0]["best"] == "★"
    assert [row["score"] for row in rows[1:9]] == [0.0] * 3 + [1.0] * 3 + [2.0] * 2


def test_the_payload_round_trips_with_its_mode():
    original = table(3, mode="min")
    assert TrialTable.from_payload(original.payload()) == original


def test_artifact_keys_are_prefect_safe_and_distinct():
    assert artifact_key("trials", "digits") == "trials-digits"
    assert artifact_key("trials", "Digits v1") != artifact_key("trials", "digits-v1")
