"""Fault tests: real signals to real processes, real locks, a real MLflow server, real Ray nodes.

Each test records one row of the fault matrix printed at the end of the run:
the fault, whether the job survived it (finished, or resumed to the end), and
how many models were lost or registered twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.helpers import Home

_MATRIX: list[tuple[str, bool, int, int]] = []


@dataclass
class FaultReport:
    fault: str

    def record(self, *, survived: bool, lost: int, duplicated: int) -> None:
        _MATRIX.append((self.fault, survived, lost, duplicated))


@pytest.fixture
def report(request: pytest.FixtureRequest) -> FaultReport:
    marker = request.node.get_closest_marker("fault")
    name = marker.args[0] if marker else request.node.name
    return FaultReport(name)


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """One home for the command-line fault tests: their local Prefect API is started once."""
    home = Home(tmp_path_factory.mktemp("faults") / "home")
    yield home
    home.stop_local_stack()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): the fault a test causes, for the matrix")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _MATRIX:
        return
    width = max(len(row[0]) for row in _MATRIX)
    lines = [
        f"{'fault':<{width}}  survived  models lost  models duplicated",
        *(
            f"{fault:<{width}}  {'yes' if ok else 'NO':<8}  {lost:>11}  {duplicated:>17}"
            for fault, ok, lost, duplicated in _MATRIX
        ),
    ]
    terminalreporter.section("fault matrix")
    for line in lines:
        terminalreporter.write_line(line)
    path = Path(os.environ.get("UNITRAIN_FAULT_MATRIX", "build/fault-matrix.txt"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
