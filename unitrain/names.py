"""Job names: how a user's name is stored, and why it can never escape a folder.

``:`` and ``,`` are stored percent-encoded (``%3A``, ``%2C``) so names such as
``experiment:v1,batch:32`` survive every store that treats them specially.
Characters that could turn a name into a path (``/``, ``\\``, a bare ``.`` or
``..``) or corrupt a record (NUL and other control characters) are rejected,
not rewritten, so the name a user sees is the name that was stored.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MAX_NAME_LENGTH", "encode_job_name", "decode_job_name", "check_job_name", "job_folder"]

MAX_NAME_LENGTH = 200

_ENCODED = {":": "%3A", ",": "%2C"}


def check_job_name(name: str) -> str:
    """Return ``name`` stripped of surrounding blanks, or raise ``ValueError`` naming the rule."""
    stripped = name.strip()
    if not stripped:
        raise ValueError("must not be blank")
    if len(stripped) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters, got {len(stripped)}")
    bad = sorted({c for c in stripped if ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(f"must not contain control characters, got {shown}")
    for separator in ("/", "\\"):
        if separator in stripped:
            raise ValueError(f"must not contain {separator!r}: a job name is not a path")
    if stripped in (".", ".."):
        raise ValueError(f"must not be {stripped!r}")
    return stripped


def encode_job_name(name: str) -> str:
    """The stored form of a valid job name.

    >>> encode_job_name("experiment:v1,batch:32")
    'experiment%3Av1%2Cbatch%3A32'
    """
    name = check_job_name(name)
    for raw, encoded in _ENCODED.items():
        name = name.replace(raw, encoded)
    return name


def decode_job_name(stored: str) -> str:
    """The name as the user wrote it."""
    for raw, encoded in _ENCODED.items():
        stored = stored.replace(encoded, raw)
    return stored


def job_folder(root: Path, stored_name: str) -> Path:
    """A folder for a job under ``root``, checked to stay inside it."""
    root = root.resolve()
    folder = (root / stored_name).resolve()
    if folder.parent != root:
        raise ValueError(f"job name {stored_name!r} does not name a folder inside {root}")
    return folder
