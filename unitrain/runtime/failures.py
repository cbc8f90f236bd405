"""Telling a Ray worker's death (a signal, the out-of-memory killer, a lost node) from code
that raised, and saying which it was."""

from __future__ import annotations

__all__ = ["worker_death"]


# Ray's errors for a process (or node) that went away, rather than code that raised.
_DEATHS = {
    "WorkerCrashedError",
    "ActorDiedError",
    "RayActorError",
    "ActorUnavailableError",
    "NodeDiedError",
    "OutOfMemoryError",
    "LocalRayletDiedError",
}


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def worker_death(error: BaseException | str | None) -> str:
    """What is known of why a Ray worker died ('' when ``error`` is not a worker's death).

    Ray rarely knows the signal; a process killed with SIGKILL is most often
    the kernel's out-of-memory killer, so the message asks.
    """
    if error is None:
        return ""
    if isinstance(error, str):
        text, names = error, {n for n in _DEATHS if n in error}
    else:
        chain = _chain(error)
        names = {type(e).__name__ for e in chain} & _DEATHS
        text = " ".join(str(e) for e in chain)
    if not names and "worker died" not in text.lower() and "actor died" not in text.lower():
        return ""
    lowered = text.lower()
    if "OutOfMemoryError" in names or "running low on memory" in lowered:
        return "worker died: out of memory (Ray killed it to protect the node)"
    if "NodeDiedError" in names or "node died" in lowered or "node has died" in lowered:
        return "worker died: its Ray node went away"
    if "sigsegv" in lowered and "received" in lowered:
        return "worker died: it crashed (SIGSEGV, a fault in native code)"
    # Ray sees only that the process vanished ("connection error ... End of
    # file"); on Linux that is almost always a SIGKILL, most often the kernel's
    # out-of-memory killer.
    return "worker died: killed by a signal; out of memory?"
