"""The terminal view's lines (the bar, the trial counts, the best and the running trials),
and who gets the process's output while a job runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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


# ProcessOutput acts on the process's file descriptors 1 and 2, so each case runs in a
# child process of its own, with pipes for its stdout and stderr as a CI runner has.
_CHATTER = """
import os, sys, threading, time
from pathlib import Path
from unitrain.errors import UnitrainError
from unitrain.ui.terminal import ProcessOutput

stop = threading.Event()
def chatter():  # as Ray's driver thread prints what its raylet says: at any moment
    n = 0
    while not stop.is_set():
        os.write(2, b"(raylet) line %d\\n" % n)
        n += 1
        time.sleep(0.001)
    os.write(2, b"(raylet) last %d\\n" % n)
"""


def _child(tmp_path, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(_CHATTER) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"RAY_COLOR_PREFIX": ""},
    )


def test_what_is_printed_before_the_job_has_its_log_goes_to_the_log_and_none_is_lost(tmp_path):
    done = _child(
        tmp_path,
        """
        with ProcessOutput(to_log=True) as output:
            thread = threading.Thread(target=chatter)
            thread.start()
            time.sleep(0.2)
            output.say("warning: a note for the user")
            output.log_to(Path("run.log"))  # while the thread goes on printing
            time.sleep(0.2)
            stop.set()
            thread.join()
            print("a library's print")
            output.result.write('{"model_id": 1}\\n')
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"model_id": 1}\n'
    assert done.stderr == "warning: a note for the user\n"
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert lines[-1] == "a library's print"
    last = int(lines[-2].removeprefix("(raylet) last "))
    numbered = [int(line.removeprefix("(raylet) line ")) for line in lines[:-2]]
    assert sorted(numbered) == list(range(last))  # every line, once, across the switch


def test_a_refused_job_leaves_no_log_and_shows_none_of_the_libraries_output(tmp_path):
    done = _child(
        tmp_path,
        """
        try:
            with ProcessOutput(to_log=True, quiet_for=(UnitrainError,)):
                os.write(2, b"(raylet) started\\n")
                raise UnitrainError("refused")
        except UnitrainError as error:
            print(f"error: {error}", file=sys.stderr)
        """,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "error: refused\n")
    assert list(tmp_path.iterdir()) == []


def test_a_crash_before_the_log_shows_what_was_held(tmp_path):
    done = _child(
        tmp_path,
        """
        with ProcessOutput(to_log=True, quiet_for=(UnitrainError,)):
            os.write(2, b"(raylet) what led up to it\\n")
            raise RuntimeError("crash")
        """,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("(raylet) what led up to it\n")
    assert "RuntimeError: crash" in done.stderr


def test_verbose_sends_the_libraries_output_to_stderr_and_keeps_stdout_for_the_result(tmp_path):
    done = _child(
        tmp_path,
        """
        with ProcessOutput(to_log=False) as output:
            print("a library's print")
            output.result.write("result\\n")
        print("after")
        """,
    )
    assert (done.stdout, done.stderr) == ("result\nafter\n", "a library's print\n")
