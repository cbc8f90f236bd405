"""A migrated, empty Prefect database that a new home's server starts from.

Prefect's server creates and migrates its SQLite database the first time it
starts: about 15 s on a 2-core machine, paid by the first job of every new
home. Two copies of a migrated database spare new homes that cost:

- the installation's, which ``make setup`` prepares once
  (``python -m unitrain.runtime.prefect_db_template``), as Django's squashed
  migrations spare a new database its history;
- the machine's, in ``UNITRAIN_CACHE``: the first local server on a machine
  keeps a copy of its database as it stands once started.

Either copy holds Prefect's tables and built-in block types only; every
other row is dropped from it. A new home starts from the machine's copy, else
the installation's. Prefect still runs its migrations at start, so a copy made
by an older Prefect is brought up to date; copies are kept per Prefect version.
Anything wrong with a copy costs only the time it was meant to save: the
server then makes its database as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from unitrain.runtime.prefect_api_server import PrefectApiServer, use_api_only_settings
from unitrain.settings import settings

__all__ = [
    "database_path",
    "installed_template_path",
    "keep_template",
    "prepare_installed_template",
    "seed_from_template",
    "template_path",
]

log = logging.getLogger(__name__)

#: the tables whose rows a fresh server writes for itself, the same in every home
KEPT_TABLES = frozenset({"alembic_version", "block_type", "block_schema", "block_schema_reference"})


def _file_name() -> str:
    import prefect

    return f"prefect-{prefect.__version__}.db"


def template_path() -> Path:
    """The machine's copy (``UNITRAIN_CACHE``)."""
    return settings().cache / _file_name()


def installed_template_path() -> Path:
    """The installation's copy, beside the environment unitrain is installed in."""
    return Path(sys.prefix) / "share" / "unitrain" / _file_name()


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
    found = [path for path in (template_path(), installed_template_path()) if path.is_file()]
    if database.exists() or not found:
        return False
    template = found[0]
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


def keep_template(database: Path, template: Path | None = None) -> None:
    """Keep a copy of a just-started server's database, emptied, unless one is kept already.

    The copy goes to ``template``, by default the machine's (:func:`template_path`).
    """
    template = template or template_path()
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


def prepare_installed_template(timeout_s: float = 300.0) -> Path:
    """Make the installation's copy: start a Prefect server on an empty database, keep it.

    Run in a process of its own, before Prefect is imported: Prefect reads its
    database's location when it is imported.
    """
    with tempfile.TemporaryDirectory(prefix="unitrain-prefect-") as folder:
        database = Path(folder) / "prefect.db"
        use_api_only_settings()
        os.environ.update(
            PREFECT_HOME=folder,
            PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        logging.basicConfig(level=logging.WARNING)
        target = installed_template_path()  # imports Prefect, which reads the above
        if target.is_file():
            return target
        api = PrefectApiServer(port=0)
        api.start()  # the server migrates the database and registers Prefect's blocks
        deadline = time.monotonic() + timeout_s
        while not api.started and api.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = api.started
        if api.server is not None:
            api.server.should_exit = True
        api.thread.join(timeout=30)
        if not started:
            raise RuntimeError("Prefect's server did not start on an empty database")
        keep_template(database, target)
    if not target.is_file():
        raise RuntimeError(f"could not keep Prefect's database at {target}")
    return target


if __name__ == "__main__":
    print(f"Prefect's database, migrated: {prepare_installed_template()}")
