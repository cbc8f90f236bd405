"""SIGTERM, handled like Ctrl-C, so every layer in between ends a job the same way.

Ray's driver answers SIGTERM with ``sys.exit(1)`` (indistinguishable from an
ordinary exit), and an exception other than ``KeyboardInterrupt`` raised by a
signal handler while the driver waits in ``ray.get`` becomes a ``SystemError``.
So unitrain's handler raises :class:`Terminated`, a ``KeyboardInterrupt``:
Prefect marks the flow run Crashed, the job records that it was interrupted,
and the command line, which asks :func:`received_sigterm`, exits 143.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["Terminated", "install", "received_sigterm"]

_received = threading.Event()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived."""


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.set()
    raise Terminated()


def install() -> bool:
    """Handle SIGTERM as an interrupt in this process (main thread only); return whether it did."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, _handler)
    return True


def received_sigterm() -> bool:
    return _received.is_set()
