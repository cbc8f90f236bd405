"""What ``unitrain run`` shows while a job runs: its progress bar and, in a search, its trials.

On a terminal (stderr is a TTY) the libraries' output (Prefect's and Ray's
logs, Ray Tune's messages, the plugin's prints) goes to the job's log file,
whose path is printed first, and a few lines are redrawn in place once a
second: the job's weighted progress bar and, while tuning, its best trials,
the running ones and the count of trials by status. ``-v`` keeps the logs on
the terminal instead, without the view. Without a terminal (CI, a pipe) the
libraries' output goes to the log file too, and stderr gets plain lines
without escape codes: the job's own (what its steps log, and the plugin's
lines with their trial IDs), each timestamped, and a progress line every 10
percent.

The view shows what the job publishes to the Prefect API, the same artifacts
the Prefect UI shows (so the same 20/75/5 weights), read by a thread of its
own: it never slows the job, and the result JSON keeps stdout to itself.

:class:`ProcessOutput` owns the process's stdout and stderr for the whole
run, from before Ray starts: Ray's driver prints what its raylet and workers
say from a thread of its own, at any moment, so a takeover that began only
once the job had a log file would let the first of those lines (a raylet's
"disk is over 95% full", say) through to the terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from unitrain.job.plan import JobPlan, TuningPlan
from unitrain.stores.job_state import JobFolder

__all__ = ["JobView", "ProcessOutput", "Snapshot", "render"]

log = logging.getLogger(__name__)

POLL_S = 1.0
#: without a terminal the job's lines and a line per 10 percent are printed
PLAIN_POLL_S = 2.0
BAR_WIDTH = 30
#: trial rows of the terminal table: the best ones, then running ones
BEST_ROWS = 5
RUNNING_ROWS = 3
#: without a terminal, one progress line per this many percent
PLAIN_STEP = 10.0


@dataclass
class Snapshot:
    """The job as last read from the Prefect API."""

    percent: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def render(plan: JobPlan, snapshot: Snapshot, width: int = 100) -> list[str]:
    """The lines of the view: the bar, then (tuning) the trial counts and the best trials."""
    done = int(BAR_WIDTH * min(max(snapshot.percent, 0.0), 100.0) / 100.0)
    elapsed = int(time.monotonic() - snapshot.started)
    lines = [
        f"{plan.job}  [{'#' * done}{'.' * (BAR_WIDTH - done)}] {snapshot.percent:5.1f}%  "
        f"{elapsed // 60}:{elapsed % 60:02d}"
    ]
    if isinstance(plan, TuningPlan) and snapshot.rows:
        lines += _trial_lines(plan, snapshot.rows)
    return [line[:width].rstrip() for line in lines]


def _trial_lines(plan: TuningPlan, rows: list[dict[str, Any]]) -> list[str]:
    objective = plan.objective
    metric = objective.metric
    trials = [r for r in rows if not str(r.get("trial_id", "")).startswith("... ")]
    counts: dict[str, int] = {}
    for row in trials:
        status = str(row.get("status", "")).lower() or "pending"
        counts[status] = counts.get(status, 0) + 1
    more = [str(r["status"]) for r in rows if str(r.get("trial_id", "")).startswith("... ")]
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines = [f"trials: {summary}" + (f" (and {more[0]})" if more else "")]

    def rank(row: dict[str, Any]) -> tuple[bool, float]:
        return objective.rank(objective.value_of(row))

    scored = sorted((r for r in trials if isinstance(r.get(metric), int | float)), key=rank)
    running = [r for r in trials if r.get("status") == "RUNNING" and r not in scored]
    shown = scored[:BEST_ROWS] + running[:RUNNING_ROWS]
    if not shown:
        return lines
    names = plan.searched_names[:3]
    metrics = list(dict.fromkeys([metric, *plan.config.metrics]))
    # several objectives or constraints: which trials are on the front, which broke one
    marked = plan.config.several or bool(plan.config.constraints)
    header = ["trial", "status", *metrics, *names, *(["mark"] if marked else [])]
    table = [header] + [
        [
            ("★ " if row.get("best") else "  ") + str(row.get("trial_id", "")),
            str(row.get("status", "")).lower(),
            *(_cell(row.get(m, "")) for m in metrics),
            *(_cell(row.get(name, "")) for name in names),
            *([_mark(row)] if marked else []),
        ]
        for row in shown
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return lines + [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table
    ]


def _mark(row: dict[str, Any]) -> str:
    if row.get("feasible") == "no":
        return "infeasible"
    return "front" if row.get("pareto") == "yes" else ""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class ProcessOutput:
    """stdout and stderr (file descriptors 1 and 2) while ``unitrain run`` runs a job.

    :attr:`result` is the real stdout, for the result JSON alone; :attr:`terminal`
    is the real stderr, for the job's own lines. Everything else printed (Prefect,
    Ray, the plugin) goes, with ``to_log``, first to an unnamed temporary file and,
    once the job is accepted, to its log file (:meth:`log_to`), held lines first;
    without ``to_log`` (``-v``), to stderr. A job refused before it has a log file
    leaves nothing: what was held is dropped when the refusal is a
    ``quiet_for`` (the CLI says why in one line) or an interrupt, and shown
    when it is any other error, so that a crash keeps its context.
    """

    def __init__(self, *, to_log: bool, quiet_for: tuple[type[BaseException], ...] = ()) -> None:
        self.to_log = to_log
        self.quiet_for = quiet_for
        self.result: TextIO = sys.stdout
        self.terminal: TextIO = sys.stderr
        self._saved: list[int] = []
        self._held: Any = None

    def __enter__(self) -> ProcessOutput:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = [os.dup(1), os.dup(2)]
        self.result = os.fdopen(os.dup(self._saved[0]), "w")
        self.terminal = os.fdopen(os.dup(self._saved[1]), "w", buffering=1, errors="replace")
        if self.to_log:
            self._held = tempfile.TemporaryFile()
            os.dup2(self._held.fileno(), 1)
            os.dup2(self._held.fileno(), 2)
            if not self.terminal.isatty():
                os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # logs without colour codes
        else:
            os.dup2(2, 1)  # the libraries' prints go to stderr; stdout is the result's
        return self

    def say(self, text: str) -> None:
        """Write one line to the terminal."""
        with contextlib.suppress(OSError, ValueError):  # a terminal that is gone
            self.terminal.write(text + "\n")
            self.terminal.flush()

    def log_to(self, path: Path) -> None:
        """From now on, output goes to ``path`` (appended), after what was held."""
        if self._held is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            # Redirected before the copy: a line printed meanwhile is not lost.
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            self._held.seek(0)
            shutil.copyfileobj(self._held, log)
        self._held.close()
        self._held = None

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        for target, fd in zip((1, 2), self._saved, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        self._saved = []
        if self._held is not None:  # the job never got as far as its log file
            if kind is not None and _shows_context(kind, self.quiet_for):
                self._held.seek(0)
                with contextlib.suppress(OSError, ValueError):
                    self.terminal.write(self._held.read().decode("utf-8", "replace"))
            self._held.close()
            self._held = None
        for stream in (self.result, self.terminal):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _shows_context(kind: type[BaseException], quiet_for: tuple[type[BaseException], ...]) -> bool:
    return issubclass(kind, Exception) and not issubclass(kind, quiet_for)


class JobView:
    """The view of one ``unitrain run``, as a context manager around the job.

    On entering, the libraries' output goes to ``log_path`` (with ``output``
    taking the terminal); :meth:`follow` starts reading the Prefect API once it
    is up; leaving draws the last state.
    """

    def __init__(
        self, plan: JobPlan, log_path: Path, output: ProcessOutput, *, verbose: bool = False
    ) -> None:
        self.plan = plan
        self.log_path = log_path
        self.output = output
        self.live = not verbose and output.terminal.isatty()
        self.plain = not verbose and not self.live
        self.snapshot = Snapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = 0
        self._printed = -PLAIN_STEP
        #: one drawer at a time
        self._drawing = threading.RLock()
        self._log_offset = 0

    def __enter__(self) -> JobView:
        if self.live or self.plain:
            self.output.log_to(self.log_path)
            self.say(f"logs: {self.log_path} (-v shows them here)")
        if self.plain:
            # The job's own lines are read from the log from here on; what was held
            # before (the libraries' start) is not the job's.
            self._log_offset = _size(self.log_path)
        return self

    def say(self, text: str) -> None:
        """Write one plain line to the terminal."""
        with self._drawing:
            self.output.say(text)

    def follow(self) -> None:
        """Start reading the job's progress from the Prefect API (call once it is up)."""
        if self.live or self.plain:
            # Prefect's settings (the API URL) live in context variables: carry them over.
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._run,), name="job-view", daemon=True
            )
            self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if exc[0] is None and self._thread is not None:  # the job is done: say so
            self.snapshot.percent = 100.0
            self._draw()
        with self._drawing:
            if self.plain:
                self._say_job_lines()  # what the job logged after the last picture
            if exc[0] is not None and (self.live or self.plain):
                self.say(f"the job's logs: {self.log_path}")

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                reader = _Reader(client, self.plan)
                failures = 0
                while not self._stop.wait(POLL_S if self.live else PLAIN_POLL_S):
                    try:
                        reader.read(self.snapshot)
                    except Exception as error:  # the next read may work
                        failures += 1
                        if failures == 1:
                            log.warning("the progress view could not read the job: %s", error)
                    if not self._stop.is_set():  # else the last picture is drawn on exit
                        self._draw()
                # The job is over: read once more, so that the last picture shows
                # how it ended (the final table marks the best trial).
                with contextlib.suppress(Exception):
                    reader.read(self.snapshot)
        except Exception as error:  # a view never fails a job
            log.warning("the progress view stopped: %s", error)

    def _draw(self) -> None:
        with self._drawing, contextlib.suppress(OSError, ValueError):  # a gone terminal
            self._draw_now()

    def _draw_now(self) -> None:
        terminal = self.output.terminal
        if self.live:
            width = _width(terminal)
            lines = render(self.plan, self.snapshot, width)
            erase = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            terminal.write(erase + "\n".join(lines) + "\n")
            terminal.flush()
            self._drawn = len(lines)
        elif self.plain:
            self._say_job_lines()
            if self.snapshot.percent >= self._printed + PLAIN_STEP:
                self._printed = self.snapshot.percent // PLAIN_STEP * PLAIN_STEP
                stamp = time.strftime("%H:%M:%S")
                self.say(f"{stamp} | PROGRESS | {self.plan.job}: {self.snapshot.percent:.0f}%")

    def _say_job_lines(self) -> None:
        """The job's own lines from its log file, plain: what its flow run and its steps
        logged (the plugins' lines with their trial IDs among them), not the libraries'."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read()
        except OSError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._log_offset += len(complete)
        for raw in complete.decode("utf-8", "replace").splitlines():
            line = job_line(raw)
            if line is not None:
                self.say(line)


#: a line of a flow run's or a step's log, as Prefect prints it (from a Ray worker: with
#: Ray's prefix, coloured or not)
_RUN_LINE = re.compile(
    r"^(?:(?:\x1b\[[0-9;]*m)?\([^)]*\)(?:\x1b\[[0-9;]*m)? )?"
    r"(\d\d:\d\d:\d\d)\.\d+ \| (\w+)\s*\| (?:Flow run|Task run) '[^']*' - (.*)$"
)
#: Prefect's own words about a run going as it should
_ROUTINE = ("Beginning flow run", "Finished in state Completed()", "Created task run")


def job_line(raw: str) -> str | None:
    """A line of the job's log as the plain view shows it (None: not the job's own)."""
    match = _RUN_LINE.match(raw)
    if match is None:
        return None
    stamp, level, text = match.groups()
    if not text.strip() or text.startswith(_ROUTINE):
        return None
    return f"{stamp} | {level:<8} | {_ESCAPES.sub('', text)}"


_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Reader:
    """Finds the job's flow run, then reads its progress and trial table artifacts."""

    def __init__(self, client: Any, plan: JobPlan) -> None:
        self.client = client
        self.plan = plan
        self.folder = JobFolder(plan.job)
        # Flow runs of earlier attempts of this job (a resumed job keeps its name).
        self.earlier = set(self._flow_runs())
        self.flow_run_id: Any = None

    def _flow_runs(self) -> list[str]:
        record = self.folder.record()
        return list(record.flow_runs) if record is not None else []

    def read(self, snapshot: Snapshot) -> None:
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterType,
        )
        from prefect.client.schemas.sorting import ArtifactSort

        if self.flow_run_id is None and not self._find_flow_run():
            return
        of_run = ArtifactFilterFlowRunId(any_=[self.flow_run_id])
        # One bar per job (and one per step): few, and updated in place.
        for artifact in self.client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=of_run, type=ArtifactFilterType(any_=["progress"])
            ),
        ):
            if (artifact.description or "").startswith("Progress of job"):
                snapshot.percent = float(artifact.data or 0.0)
        if isinstance(self.plan, TuningPlan):
            # Each snapshot of the trial table is a new version: the newest one.
            tables = self.client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=of_run, type=ArtifactFilterType(any_=["table"])
                ),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            if tables:
                data = tables[0].data
                if isinstance(data, str):
                    data = json.loads(data)
                snapshot.rows = list(data) if isinstance(data, list) else []

    def _find_flow_run(self) -> bool:
        """This attempt's flow run: the one the job's record gained since the view began."""
        new = [run for run in self._flow_runs() if run not in self.earlier]
        if new:
            self.flow_run_id = new[-1]
        return self.flow_run_id is not None


def _width(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except OSError:
        columns = 0
    return columns or 100  # a terminal that does not know its size says 0
