"""A SIGTERM at any moment of the local stack's start stops it, Ray included.

A job refused while the stack starts sends it SIGTERM. Landing while Ray was
starting, it once left the stack waiting forever on an import lock.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.faults.helpers import clean_environment, ray_processes_of, wait_for

#: seconds after the start: before Ray, while Ray starts, while Prefect's API starts
DELAYS_S = (0.5, 2.0, 3.5, 5.0, 7.0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.faults
@pytest.mark.fault("SIGTERM while the local stack starts")
def test_a_sigterm_while_the_stack_starts_stops_it(tmp_path, report):
    stuck = []
    for delay in DELAYS_S:
        home = tmp_path / f"home-{delay}"
        stack = subprocess.Popen(
            [sys.executable, "-m", "unitrain.runtime.stack_server", "--port", str(_free_port())],
            env=clean_environment(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay)
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stuck.append(f"SIGTERM {delay} s after the start: still running after 60 s")
            stack.kill()
            stack.wait()
        wait_for(
            lambda leader=stack.pid: not ray_processes_of(leader),
            30,
            f"Ray's processes to stop ({delay} s after the start)",
        )
    report.record(survived=not stuck, lost=0, duplicated=0)
    assert not stuck, "; ".join(stuck)
