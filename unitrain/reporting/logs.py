"""Where a job's own lines go: the Prefect run's log inside a flow or task, else Python's."""

from __future__ import annotations

import logging

__all__ = ["run_logger"]


def run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The Prefect run's logger inside a flow or task, else a plain logger."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # outside a Prefect run
        return logging.getLogger("unitrain.run")
