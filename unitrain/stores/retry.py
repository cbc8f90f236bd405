"""Stores have bad minutes: MLflow calls that retry what is transient, for a bounded time.

A SQLite store another process holds locked, a tracking server restarting, a
network blip: each makes one call fail that succeeds a little later. Every
MLflow call unitrain makes goes through :class:`RetryingClient`, which retries
such failures with exponential backoff for up to ``UNITRAIN_STORE_RETRY_S``
seconds (default 60), then raises
:class:`~unitrain.errors.StoreUnavailableError` naming the store (credentials
masked) and the cause. Anything else (a missing model, a bad request) is
raised at once.

A call that makes something (a run, a model version) is not repeated blindly:
when its reply is lost, the store may have made it all the same. Such calls
go through :func:`retrying_create`, which, before each new attempt, looks for
what the previous one may have made (by a key the caller gave it).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from unitrain.errors import StoreUnavailableError
from unitrain.settings import settings

__all__ = [
    "RetryingClient",
    "is_transient",
    "masked_uri",
    "retrying",
    "retrying_create",
    "scrub",
]

T = TypeVar("T")
log = logging.getLogger(__name__)

# Words of errors that go away when the store comes back or the lock is released.
_TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "connection refused",
    "connection reset",
    "connection aborted",
    "failed to establish a new connection",
    "max retries exceeded",
    "remote end closed connection",
    "temporarily unavailable",
    "timed out",
    "502",
    "503",
    "504",
)
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "REQUEST_LIMIT_EXCEEDED"}


def masked_uri(uri: str) -> str:
    """``https://user:pass@host/x?token=t`` -> ``https://***@host/x``: safe to show anywhere."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable URI>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)[^/\s@]+@")


def scrub(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (``scheme://***@host``)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is one a retry a little later may not see."""
    code = getattr(error, "error_code", None)
    if code in _TRANSIENT_CODES:
        return True
    if code not in (None, "INTERNAL_ERROR"):
        return False  # NOT_FOUND, INVALID_PARAMETER_VALUE, ...: retrying changes nothing
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    text = str(error).lower()
    return any(word in text for word in _TRANSIENT_TEXT)


def retrying(call: Callable[[], T], *, store: str, what: str, budget_s: float | None = None) -> T:
    """``call()``, retried on transient errors for up to ``budget_s`` seconds."""
    started = time.monotonic()
    budget = budget_s
    delay = 0.2
    while True:
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            if budget is None:  # read on the first failure: most calls never need it
                budget = settings().store_retry_s
            remaining = started + budget - time.monotonic()
            if remaining <= 0:
                text = scrub(str(error)).strip()
                cause = text.splitlines()[0][:300] if text else ""
                raise StoreUnavailableError(
                    f"the MLflow store at {masked_uri(store)} could not be reached "
                    f"(or stayed busy) for {budget:g} s while {what}: "
                    f"{type(error).__name__}: {cause}"
                ) from None
            log.info("%s: %s; retrying in %.1f s", what, type(error).__name__, delay)
            time.sleep(min(delay, remaining) * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 5.0)


def retrying_create(
    create: Callable[[], T],
    find: Callable[[], T | None],
    *,
    store: str,
    what: str,
    budget_s: float | None = None,
) -> T:
    """``create()``, retried like :func:`retrying`, but never made twice.

    Before every attempt after the first, ``find()`` looks for what an earlier
    attempt made (its reply lost on the way: the store did the write, the
    client saw a dropped connection) and returns it instead.
    """
    attempts = 0

    def attempt() -> T:
        nonlocal attempts
        if attempts:
            found = find()
            if found is not None:
                log.info("%s: the earlier attempt took effect; its reply was lost", what)
                return found
        attempts += 1
        return create()

    return retrying(attempt, store=store, what=what, budget_s=budget_s)


#: calls that make something new: retried only by :func:`retrying_create`
NOT_REPEATABLE = frozenset({"create_run", "create_model_version"})


class RetryingClient:
    """An ``MlflowClient`` whose calls retry transient store errors.

    The calls in :data:`NOT_REPEATABLE` are made once: their callers retry them
    with :func:`retrying_create`, which checks first whether a lost attempt
    took effect.
    """

    def __init__(self, client: Any, store: str, *, budget_s: float | None = None) -> None:
        self._client = client
        self._store = store
        self._budget_s = budget_s

    @property
    def tracking_uri(self) -> str:
        return str(self._client.tracking_uri)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name in NOT_REPEATABLE:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return retrying(
                lambda: attribute(*args, **kwargs),
                store=self._store,
                what=f"calling {name}",
                budget_s=self._budget_s,
            )

        return call
