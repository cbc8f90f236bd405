"""The dataset catalog: integer IDs that point at local paths or URIs.

Entries live in ``$UNITRAIN_HOME/datasets/catalog.json``. A user may choose an
ID (to keep the IDs of another platform) or take the next free one. The
bundled demo datasets are always present. Preparing a dataset copies it into a
local cache, reporting progress, and checks its SHA-256 against the digest
recorded when it was added.

A job names a catalogued dataset, never a path or a URL: sources enter the
catalog only through ``unitrain datasets add``, an operator's action, which
``UNITRAIN_DATASET_ROOTS`` (folders) and ``UNITRAIN_DATASET_SCHEMES`` (URI
schemes) can limit. Paths are resolved (symlinks, ``..``) before they are
checked, URIs with credentials in them are refused (credentials belong in
the environment), and cached copies are readable by their owner only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from unitrain.errors import NotFoundError, UnitrainError
from unitrain.job.records import CatalogEntry, Dataset
from unitrain.settings import settings

__all__ = ["CatalogEntry", "Dataset", "DatasetCatalog", "BUNDLED_DATASETS"]

ProgressCallback = Callable[[int, int], None]

BUNDLED_SCHEME = "bundled"
# id -> (name, description). IDs below 100 are reserved for bundled datasets.
BUNDLED_DATASETS: dict[int, tuple[str, str]] = {
    1: ("digits", "8x8 handwritten digits, 1797 images, 10 classes (scikit-learn)"),
    2: ("iris", "iris flowers, 150 samples, 3 classes (scikit-learn)"),
}
_CHUNK = 1 << 20


class DatasetCatalog:
    """Reads and writes the catalog file; every write holds a file lock."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or settings().datasets_dir
        self.path = self.root / "catalog.json"

    # -- reading -----------------------------------------------------------

    def entries(self) -> list[CatalogEntry]:
        bundled = [
            CatalogEntry(id=i, name=n, uri=f"{BUNDLED_SCHEME}:{n}", description=d)
            for i, (n, d) in BUNDLED_DATASETS.items()
        ]
        return bundled + [CatalogEntry(**raw) for raw in self._load()]

    def get(self, ref: int | str) -> CatalogEntry:
        """Find an entry by ID or by name; raise :class:`NotFoundError` naming what exists."""
        for entry in self.entries():
            if entry.id == ref or entry.name == ref:
                return entry
        known = ", ".join(f"{e.id} ({e.name})" for e in self.entries()[:20])
        if isinstance(ref, str) and ("://" in ref or "::" in ref or "/" in ref):
            raise NotFoundError(
                f"dataset {ref[:200]!r} is not in the catalog: a job names a catalogued "
                "dataset (ID or name), never a path or URL; an operator adds sources with: "
                "unitrain datasets add SOURCE --id N"
            )
        raise NotFoundError(
            f"dataset {ref!r} is not in the catalog; known datasets: {known}. "
            "Add one with: unitrain datasets add SOURCE --id N"
        )

    # -- writing -----------------------------------------------------------

    def add(self, source: str, *, id: int | None = None, name: str | None = None) -> CatalogEntry:
        """Register ``source`` (a local path or a URI) and return its entry."""
        uri = _normalise_uri(source)
        check_source_allowed(uri)
        if uri.startswith(BUNDLED_SCHEME + ":"):
            bundled = {n for n, _ in BUNDLED_DATASETS.values()}
            if uri.split(":", 1)[1] not in bundled:
                raise NotFoundError(f"{source!r}: bundled datasets are {sorted(bundled)}")
        local = _local_path(uri)
        if local is not None and not local.exists():
            raise NotFoundError(f"dataset source {source!r} does not exist")
        if id is not None and id < 100 and id in BUNDLED_DATASETS:
            raise UnitrainError(
                f"--id {id} belongs to the bundled dataset {BUNDLED_DATASETS[id][0]!r}"
            )
        if id is not None and id < 0:
            raise UnitrainError(f"--id must be >= 0, got {id}")
        digest, size = _digest(local) if local is not None else (None, None)
        with self._locked():
            raw = self._load()
            taken = {e["id"] for e in raw} | set(BUNDLED_DATASETS)
            names = {e["name"] for e in raw} | {n for n, _ in BUNDLED_DATASETS.values()}
            if id is None:
                id = max(max(taken) + 1, 100)
            elif id in taken:
                raise UnitrainError(f"dataset ID {id} is already taken; pick another --id")
            if name is None:
                name = local.name if local is not None else Path(urlparse(uri).path).name
                if uri.startswith(BUNDLED_SCHEME + ":"):
                    name = f"{uri.split(':', 1)[1]}-{id}"
            if not name or name.isdigit():
                raise UnitrainError(f"dataset name {name!r} must be non-empty and not a number")
            if name in names:
                raise UnitrainError(f"dataset name {name!r} is already taken; pass --name")
            entry = CatalogEntry(
                id=id,
                name=name,
                uri=uri,
                sha256=digest,
                size=size,
                added_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            raw.append(asdict(entry))
            self._save(raw)
        return entry

    # -- preparing ---------------------------------------------------------

    def prepare(self, entry: CatalogEntry, *, progress: ProgressCallback | None = None) -> Dataset:
        """Copy ``entry`` into the local cache (once) and check its digest."""
        check_source_allowed(entry.uri)  # the rules may have tightened since it was added
        report = progress or (lambda done, total: None)
        cache = self.root / "cache"
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        cache.chmod(0o700)
        if entry.uri.startswith(BUNDLED_SCHEME + ":"):
            path = _materialise_bundled(entry.uri.split(":", 1)[1], cache)
            digest, size = _digest(path)
            report(size, size)
            return Dataset(entry.id, entry.name, entry.uri, str(path), digest)
        # One job copies a dataset at a time; the others then find it cached.
        with self._locked(f".prepare-{entry.id}.lock"):
            return self._prepare_copy(entry, cache, report)

    def _prepare_copy(self, entry: CatalogEntry, cache: Path, report: ProgressCallback) -> Dataset:
        key = hashlib.sha256(entry.uri.encode()).hexdigest()[:16]
        target = cache / f"{entry.id}-{key}"
        marker = target / ".sha256"
        if target.exists() and marker.exists():
            digest = marker.read_text().strip()
            if entry.sha256 and digest != entry.sha256:
                shutil.rmtree(target)
            else:
                payload = next(p for p in target.iterdir() if p.name != ".sha256")
                _, size = _digest(payload)
                report(size, size)
                return Dataset(entry.id, entry.name, entry.uri, str(payload), digest)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
        try:
            payload = _copy(entry.uri, staging, report)
            digest, _ = _digest(payload)
            if entry.sha256 and digest != entry.sha256:
                raise UnitrainError(
                    f"dataset {entry.id} ({entry.name}) changed since it was registered: "
                    f"sha256 {digest[:12]}... != recorded {entry.sha256[:12]}...; "
                    "register it again to accept the new content"
                )
            (staging / ".sha256").write_text(digest)
            _owner_only(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)  # atomic: a half-copied dataset is never used
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Dataset(entry.id, entry.name, entry.uri, str(target / payload.name), digest)

    # -- storage -----------------------------------------------------------

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return list(json.loads(self.path.read_text() or "[]"))

    def _save(self, raw: list[dict[str, Any]]) -> None:
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(sorted(raw, key=lambda e: e["id"]), indent=2))
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _locked(self, name: str = ".catalog.lock") -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / name, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def check_source_allowed(uri: str) -> None:
    """Refuse a source outside ``UNITRAIN_DATASET_ROOTS`` / ``UNITRAIN_DATASET_SCHEMES``."""
    if uri.startswith(BUNDLED_SCHEME + ":"):
        return
    config = settings()
    if "::" in uri:
        raise UnitrainError(
            f"dataset source {uri[:200]!r}: chained fsspec URLs are not accepted; name one location"
        )
    parsed = urlparse(uri)
    if parsed.username or parsed.password:
        raise UnitrainError(
            "dataset source: credentials in a URI are refused (they would be stored and "
            "shown); put them in the environment or the storage's own configuration"
        )
    scheme = parsed.scheme or "file"
    if scheme not in config.dataset_schemes:
        raise UnitrainError(
            f"dataset source: scheme {scheme!r} is not allowed; allowed: "
            f"{', '.join(sorted(config.dataset_schemes))} (UNITRAIN_DATASET_SCHEMES)"
        )
    local = _local_path(uri)
    if local is not None and config.dataset_roots:
        resolved = local.resolve()
        if not any(resolved.is_relative_to(root) for root in config.dataset_roots):
            roots = ", ".join(str(r) for r in config.dataset_roots)
            raise UnitrainError(
                f"dataset source {str(resolved)!r} is outside the allowed folders ({roots}; "
                "UNITRAIN_DATASET_ROOTS)"
            )


def _normalise_uri(source: str) -> str:
    if source.startswith(BUNDLED_SCHEME + ":"):
        return source
    parsed = urlparse(source)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else source).expanduser().resolve()
        return path.as_uri()
    return source


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None


def _digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, or of a folder's files in name order."""
    digest = hashlib.sha256()
    size = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


def _copy(uri: str, staging: Path, report: ProgressCallback) -> Path:
    local = _local_path(uri)
    if local is not None:
        if not local.exists():
            raise NotFoundError(f"dataset source {local} no longer exists")
        files = [local] if local.is_file() else [p for p in local.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        done = 0
        destination = staging / local.name
        for file in files:
            target = destination if local.is_file() else destination / file.relative_to(local)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(file, "rb") as src, open(target, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    done += len(chunk)
                    report(done, total)
        if local.is_dir():
            destination.mkdir(exist_ok=True)
        report(total, total)
        return destination
    import fsspec  # remote URIs (http, s3, ...) go through fsspec

    destination = staging / (Path(urlparse(uri).path).name or "data")
    with fsspec.open(uri, "rb") as src, open(destination, "wb") as dst:
        total = getattr(src, "size", None) or 0
        done = 0
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            done += len(chunk)
            report(done, max(total, done))
    return destination


def _owner_only(folder: Path) -> None:
    """Cached data is readable by its owner only, whatever the source's permissions were."""
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def _materialise_bundled(name: str, cache: Path) -> Path:
    """Write a bundled scikit-learn dataset as ``X``/``y`` arrays in an ``.npz`` file."""
    path = cache / f"bundled-{name}.npz"
    if path.exists():
        return path
    import numpy as np
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris}[name]
    bunch = loader()
    temporary = cache / f".bundled-{name}-{os.getpid()}.npz"
    np.savez(temporary, X=bunch.data.astype("float32"), y=bunch.target.astype("int64"))
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return path
