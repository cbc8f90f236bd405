"""Job names: how a user's name is stored, and why it can never escape a folder.

``:`` and ``,`` are stored percent-encoded (``%3A``, ``%2C``) so names such as
``experiment:v1,batch:32`` survive every store that treats them specially;
``%`` itself becomes ``%25``, so two different names never share a stored form.
Characters that could turn a name into a path (``/``, ``\\``, a bare ``.`` or
``..``) or corrupt a record (NUL and other control characters) are rejected,
not rewritten, so the name a user sees is the name that was stored.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

__all__ = ["MAX_NAME_LENGTH", "encode_job_name", "check_job_name", "job_folder"]

MAX_NAME_LENGTH = 200
# The stored name is a folder name: file systems allow 255 bytes.
_MAX_STORED_BYTES = 240

_ENCODED = {"%": "%25", ":": "%3A", ",": "%2C"}  # '%' first


def check_job_name(name: str) -> str:
    """Return ``name`` normalised (NFC, blanks stripped), or raise ``ValueError`` naming the rule.

    Characters that change how a name looks without being seen (zero-width
    and bidirectional controls, other format characters, odd spaces) are
    refused, so that one name cannot pass for another in a list.
    """
    stripped = unicodedata.normalize("NFC", name).strip()
    if not stripped:
        raise ValueError("must not be blank")
    if len(stripped) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters, got {len(stripped)}")
    bad = sorted({c for c in stripped if ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(f"must not contain control characters, got {shown}")
    invisible = sorted({c for c in stripped if _invisible(c)})
    if invisible:
        shown = ", ".join(f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed')})" for c in invisible)
        raise ValueError(f"must not contain invisible or direction-changing characters: {shown}")
    for separator in ("/", "\\"):
        if separator in stripped:
            raise ValueError(f"must not contain {separator!r}: a job name is not a path")
    if stripped in (".", ".."):
        raise ValueError(f"must not be {stripped!r}")
    stored = _encode(stripped).encode()
    if len(stored) > _MAX_STORED_BYTES:
        raise ValueError(
            f"is {len(stored)} bytes once stored; at most {_MAX_STORED_BYTES} fit a folder name"
        )
    return stripped


def _invisible(char: str) -> bool:
    """Format characters (Cf: bidi and zero-width controls), separators other than a space."""
    category = unicodedata.category(char)
    return category == "Cf" or category in ("Zl", "Zp") or (category == "Zs" and char != " ")


def _encode(name: str) -> str:
    for raw, encoded in _ENCODED.items():
        name = name.replace(raw, encoded)
    return name


def encode_job_name(name: str) -> str:
    """The stored form of a valid job name.

    >>> encode_job_name("experiment:v1,batch:32")
    'experiment%3Av1%2Cbatch%3A32'
    """
    return _encode(check_job_name(name))


def job_folder(root: Path, stored_name: str) -> Path:
    """A folder for a job under ``root``, checked to stay inside it."""
    root = root.resolve()
    folder = (root / stored_name).resolve()
    if folder.parent != root:
        raise ValueError(f"job name {stored_name!r} does not name a folder inside {root}")
    return folder
