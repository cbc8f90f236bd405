"""Where the local stack keeps its state in a home: read by its jobs and written by itself.

The stack's process announces where it answers in ``local/stack.json``; each
job that uses it holds a lease, a file named after its process ID in
``local/clients/``. See ``unitrain.runtime.local_stack`` (the jobs' side) and
``unitrain.runtime.stack_server`` (the stack's own process).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from unitrain.runtime.processes import is_alive
from unitrain.settings import settings

__all__ = [
    "HOST",
    "LocalStack",
    "announce",
    "announced",
    "clients_folder",
    "live_clients",
    "stack_folder",
    "state_file",
    "withdraw",
]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LocalStack:
    """Where the running stack answers."""

    pid: int
    api_url: str
    ray_address: str


def stack_folder() -> Path:
    folder = settings().home_dir() / "local"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def state_file() -> Path:
    return stack_folder() / "stack.json"


def clients_folder() -> Path:
    folder = stack_folder() / "clients"
    folder.mkdir(exist_ok=True)
    return folder


def announced() -> LocalStack | None:
    """The stack ``stack.json`` names (it may have died since)."""
    try:
        state = json.loads(state_file().read_text())
        return LocalStack(int(state["pid"]), state["api_url"], state["ray_address"])
    except (OSError, ValueError, KeyError):
        return None


def announce(stack: LocalStack) -> None:
    """Tell jobs where this stack answers."""
    state = {"pid": stack.pid, "api_url": stack.api_url, "ray_address": stack.ray_address}
    temporary = state_file().with_name(f".stack.json.{os.getpid()}")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, state_file())
    clients_folder()


def withdraw(pid: int) -> None:
    """Remove ``stack.json`` if it still names the stack of process ``pid``."""
    found = announced()
    if found is not None and found.pid == pid:
        state_file().unlink(missing_ok=True)


def live_clients() -> int:
    """How many jobs hold a lease now (the leases of jobs that died are dropped)."""
    count = 0
    for mark in clients_folder().glob("*"):
        try:
            pid = int(mark.name)
        except ValueError:
            continue
        if is_alive(pid):
            count += 1
        else:
            mark.unlink(missing_ok=True)  # a job that was killed
    return count
