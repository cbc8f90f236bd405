"""Prefect's API server in a thread of this process, API only (no UI, no background services).

The local stack runs one for a home's jobs, and ``make setup`` one on an empty
database, to keep it migrated (``unitrain.runtime.prefect_db_template``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from unitrain._compat import prefect_api_only_environment

__all__ = ["PrefectApiServer", "use_api_only_settings"]


def use_api_only_settings() -> None:
    """Configure this process's Prefect for an API-only server (before Prefect is imported)."""
    os.environ.update(prefect_api_only_environment())


class _Activity:
    """Wraps the ASGI app to remember when it last served a request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            self.last = time.monotonic()
        await self.app(scope, receive, send)


class PrefectApiServer:
    """Prefect's API on ``host:port``, served from a daemon thread.

    Args:
        prepare: run in the thread first (seeding the database), so that it
            overlaps with whatever the caller does meanwhile.
    """

    def __init__(
        self, port: int, *, host: str = "127.0.0.1", prepare: Callable[[], Any] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.prepare = prepare
        self.activity: _Activity | None = None
        self.server: Any = None
        self.thread = threading.Thread(target=self._run, name="prefect-api", daemon=True)

    def _run(self) -> None:
        import uvicorn
        from prefect.server.api.server import create_app

        if self.prepare is not None:
            self.prepare()
        self.activity = _Activity(create_app(ephemeral=True, final=True))
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.activity, host=self.host, port=self.port, log_level="error", lifespan="on"
            )
        )
        self.server.run()

    def start(self) -> None:
        self.thread.start()

    @property
    def started(self) -> bool:
        return self.server is not None and bool(self.server.started)

    @property
    def idle_s(self) -> float:
        """Seconds since the last request (since the start, before any)."""
        return time.monotonic() - self.activity.last if self.activity is not None else 0.0

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=timeout_s)
