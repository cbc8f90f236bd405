"""The terminal view's lines: the bar, the trial counts, the best and the running trials."""

from __future__ import annotations

import pytest

from unitrain.planning import plan_job
from unitrain.ui.terminal import Snapshot, job_line, render


@pytest.fixture
def tuning(home):
    return plan_job(
        {
            "name": "search",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": [
                {"name": "x", "type": "uniform", "min": 0, "max": 1},
                {"name": "y", "type": "uniform", "min": 0, "max": 1},
            ],
            "tune_config": {"metric": "score", "mode": "min", "num_samples": 9},
        },
        "synthetic",
    )


def row(trial: str, status: str, score: float | None = None, best: bool = False) -> dict:
    values = {"trial_id": trial, "best": "★" if best else "", "status": status, "x": 0.5}
    return values | ({"score": score} if score is not None else {})


def test_a_training_job_is_one_bar_line(home):
    plan = plan_job({"name": "fit", "dataset": 1, "hyperparameter": {}}, "synthetic")
    [line] = render(plan, Snapshot(percent=42.0))
    assert line.startswith("fit  [" + "#" * 12 + "." * 18 + "]  42.0%")


def test_a_search_shows_counts_then_the_best_trials_then_the_running_ones(tuning):
    rows = [
        row("t1", "TERMINATED", 0.5),
        row("t2", "RUNNING"),
        row("t3", "TERMINATED", 0.1, best=True),
        row("t4", "ERROR"),
        *[row(f"u{i}", "TERMINATED", 0.9 + i / 100) for i in range(6)],
        {"trial_id": "... 990 more", "status": "900 terminated, 90 error"},
    ]
    lines = render(tuning, Snapshot(percent=50.0, rows=rows))
    assert lines[1] == "trials: 1 error, 1 running, 8 terminated (and 900 terminated, 90 error)"
    assert lines[2].split() == ["trial", "status", "score", "x", "y"]
    shown = [line.replace("★", "").split()[0] for line in lines[3:]]
    # mode min: the lowest scores first, five of them, then the running trial
    assert shown == ["t3", "t1", "u0", "u1", "u2", "t2"]
    assert lines[3].startswith("★ t3")


def test_lines_are_cut_to_the_terminal_width(tuning):
    lines = render(tuning, Snapshot(rows=[row("t1", "TERMINATED", 0.5)]), width=12)
    assert all(len(line) <= 12 for line in lines)


def test_several_objectives_show_each_and_mark_the_front_and_the_infeasible(home):
    plan = plan_job(
        {
            "name": "front",
            "dataset": 1,
            "is_tune": True,
            "hyperparameters": [{"name": "x", "type": "uniform", "min": 0, "max": 1}],
            "tune_config": {
                "metric": ["f1", "f2"],
                "mode": ["min", "min"],
                "constraints": [{"metric": "cost", "max": 1.0}],
            },
        },
        "synthetic",
    )
    rows = [
        {"trial_id": "a", "status": "TERMINATED", "f1": 0.1, "f2": 0.9, "pareto": "yes"},
        {"trial_id": "b", "status": "TERMINATED", "f1": 0.5, "f2": 0.95},
        {"trial_id": "c", "status": "TERMINATED", "f1": 0.0, "f2": 0.1, "feasible": "no"},
    ]
    lines = render(plan, Snapshot(percent=100.0, rows=rows))
    assert lines[2].split() == ["trial", "status", "f1", "f2", "x", "mark"]
    marks = {line.split()[0]: line.split()[-1] for line in lines[3:]}
    assert marks["a"] == "front" and marks["c"] == "infeasible"
    assert marks["b"] == "0.95"  # no mark: the line ends with its last value


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "01:02:03.456 | INFO    | Task run 'tune-f3f' - best trial a_00001: score=0.5",
            "01:02:03 | INFO     | best trial a_00001: score=0.5",
        ),
        (  # from a Ray worker, with Ray's coloured prefix
            "\x1b[36m(train pid=4176)\x1b[0m 01:02:03.456 | WARNING | Task run 'train-1' - "
            "\x1b[1mlow memory\x1b[0m",
            "01:02:03 | WARNING  | low memory",
        ),
        ("01:02:03.456 | INFO    | Flow run 'x' - Beginning flow run 'x'", None),
        ("01:02:03.456 | INFO    | Task run 'tune-f3f' - ", None),
        ("01:02:03.456 | INFO    | EventsWorker - Still processing items: 1 items remaining", None),
        ("[I 2026-12-07 01:02:03,456] A new study created in memory with name: optuna", None),
        ("\x1b[36m(train pid=4176)\x1b[0m some print of a library", None),
    ],
)
def test_without_a_terminal_only_the_jobs_own_lines_are_shown_plain(raw, shown):
    assert job_line(raw) == shown
