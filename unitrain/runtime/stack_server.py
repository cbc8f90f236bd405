"""The local stack's own process: one Prefect API and one Ray for a home's jobs.

Started by ``unitrain.runtime.local_stack`` as ``python -m
unitrain.runtime.stack_server --port N``, in a session of its own (a Ctrl-C
meant for a job never reaches it). Prefect's API and Ray start side by side:
each takes seconds, much of it waiting. It announces itself once both answer,
and stops when SIGTERM arrives (``unitrain stop``, or a job refused while it
started) or once no job has used it for ``UNITRAIN_IDLE_S`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time

from unitrain._compat import ray_init_keeping_sigterm
from unitrain.runtime import stack_files
from unitrain.runtime.prefect_api_server import PrefectApiServer, use_api_only_settings
from unitrain.runtime.prefect_db_template import database_path, keep_template, seed_from_template
from unitrain.runtime.ray_init import ray_init_kwargs
from unitrain.settings import settings

__all__ = ["main", "serve"]

_CHECK_EVERY_S = 1.0


def _seed_database() -> None:
    database = database_path()
    if database is not None:
        seed_from_template(database)  # skips Prefect's migrations on a new home


def serve(port: int) -> None:
    """Run the stack until SIGTERM, or until it has been idle for ``UNITRAIN_IDLE_S``."""
    # From the first moment: a job refused while the stack starts stops it (SIGTERM).
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    use_api_only_settings()
    api = PrefectApiServer(port, host=stack_files.HOST, prepare=_seed_database)
    api.start()
    import ray

    ray_address = ""
    if not settings().ray_address and not stopping.is_set():
        ray_init_keeping_sigterm(**ray_init_kwargs(local=True))
        ray_address = str(ray.get_runtime_context().gcs_address)
    while not api.started and api.thread.is_alive() and not stopping.is_set():
        time.sleep(0.05)
    try:
        if api.started and not stopping.is_set():
            api_url = f"http://{stack_files.HOST}:{port}/api"
            stack_files.announce(stack_files.LocalStack(os.getpid(), api_url, ray_address))
            _keep_database_template()
        idle_s = settings().idle_s
        while not stopping.wait(_CHECK_EVERY_S) and api.thread.is_alive():
            if stack_files.live_clients() == 0 and api.idle_s > idle_s:
                break
    finally:
        with contextlib.suppress(OSError, ValueError):
            stack_files.withdraw(os.getpid())
        if ray.is_initialized():
            ray.shutdown()
        api.stop()


def _keep_database_template() -> None:
    """Keep this home's new database for the next new home on this machine."""
    database = database_path()
    if database is not None:
        threading.Thread(target=keep_template, args=(database,), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="unitrain's local Prefect API and Ray")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
