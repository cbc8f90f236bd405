"""A migrated, empty Prefect database that a new home's server starts from.

Prefect's server creates and migrates its SQLite database the first time it
starts: about 15 s on a 2-core machine, paid by the first job of every new
home. The first local server on a machine keeps a copy of its database as it
stands once started (Prefect's tables and built-in block types; every other
row is dropped from the copy), and the servers of later new homes start from
that copy. Prefect still runs its migrations at start, so a copy made by an
older Prefect is brought up to date; copies are kept per Prefect version.
Anything wrong with a copy costs only the time it was meant to save: the
server then makes its database as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

__all__ = ["database_path", "keep_template", "seed_from_template", "template_path"]

log = logging.getLogger(__name__)

#: the tables whose rows a fresh server writes for itself, the same in every home
KEPT_TABLES = frozenset({"alembic_version", "block_type", "block_schema", "block_schema_reference"})


def template_path() -> Path:
    import prefect

    from unitrain.settings import settings

    return settings().cache / f"prefect-{prefect.__version__}.db"


def database_path() -> Path | None:
    """The server's SQLite file (None for another database)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    text = url.get_secret_value() if url is not None else ""
    prefix = "sqlite+aiosqlite:///"
    if not text.startswith(prefix) or ":memory:" in text:
        return None
    return Path(text[len(prefix) :])


def seed_from_template(database: Path) -> bool:
    """Start a home that has no Prefect database yet from the template; True if it did."""
    template = template_path()
    if database.exists() or not template.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    temporary = database.with_name(f".{database.name}.{os.getpid()}")
    try:
        shutil.copyfile(template, temporary)
        os.replace(temporary, database)
    except OSError as error:
        log.warning("could not start from the Prefect database template: %s", error)
        temporary.unlink(missing_ok=True)
        return False
    return True


def keep_template(database: Path) -> None:
    """Keep a copy of a just-started server's database, emptied, unless one is kept already."""
    template = template_path()
    if template.exists() or not database.is_file():
        return
    temporary = template.with_name(f".{template.name}.{os.getpid()}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(sqlite3.connect(database, timeout=30)) as source,
            contextlib.closing(sqlite3.connect(temporary)) as copy,
        ):
            source.backup(copy)  # a consistent snapshot while the server runs
            tables = dict(
                copy.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                ).fetchall()
            )
            if any("VIRTUAL" in (sql or "").upper() for sql in tables.values()):
                raise sqlite3.Error("virtual tables cannot be emptied row by row here")
            for name in tables:
                if name not in KEPT_TABLES:
                    copy.execute(f'DELETE FROM "{name}"')
            copy.commit()
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            copy.execute("VACUUM")
        os.replace(temporary, template)
    except (OSError, sqlite3.Error) as error:
        log.warning("could not keep a Prefect database template: %s", error)
        temporary.unlink(missing_ok=True)
