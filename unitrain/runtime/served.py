"""The Prefect server ``unitrain serve`` runs for a home, as other processes find it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from unitrain.settings import settings

__all__ = ["healthy", "served_api_url", "server_file"]


def server_file() -> Path:
    return settings().prefect_home / "server.json"


def healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check."""
    try:
        # Plain HTTP on loopback: no proxy, and no TLS context to build (a quarter second).
        with httpx.Client(verify=False, trust_env=False, timeout=timeout_s) as client:
            return client.get(f"{api_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def served_api_url() -> str | None:
    """The URL of a server started by ``unitrain serve`` for this home, if it is up."""
    path = server_file()
    if not path.exists():
        return None
    try:
        url = json.loads(path.read_text())["api_url"]
    except (ValueError, KeyError):
        return None
    return url if healthy(url) else None
