"""The Prefect database template: kept emptied of everything but Prefect's own rows, copied once."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from unitrain.runtime import prefect_db_template
from unitrain.runtime.prefect_db_template import (
    database_path,
    keep_template,
    seed_from_template,
    template_path,
)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UNITRAIN_CACHE", str(tmp_path / "cache"))
    installed = tmp_path / "installed" / "prefect.db"
    monkeypatch.setattr(prefect_db_template, "installed_template_path", lambda: installed)
    return tmp_path / "cache"


def database(path: Path) -> Path:
    """A server's database after a job: Prefect's own rows and the job's."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("CREATE TABLE block_type (name TEXT)")
        db.execute("CREATE TABLE flow_run (name TEXT)")
        db.execute("CREATE TABLE configuration (key TEXT, value TEXT)")
        db.execute("INSERT INTO alembic_version VALUES ('head')")
        db.execute("INSERT INTO block_type VALUES ('secret')")
        db.execute("INSERT INTO flow_run VALUES ('a job')")
        db.execute("INSERT INTO configuration VALUES ('ENCRYPTION_KEY', 'k')")
        db.commit()
    return path


def rows(path: Path, table: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()


def test_the_template_keeps_prefects_own_rows_and_nothing_of_a_job_or_a_home(tmp_path, cache):
    keep_template(database(tmp_path / "prefect.db"))
    template = template_path()
    assert template.parent == cache
    assert rows(template, "alembic_version") == [("head",)]
    assert rows(template, "block_type") == [("secret",)]
    assert rows(template, "flow_run") == [] and rows(template, "configuration") == []
    assert not list(template.parent.glob(f"{template.name}-*"))  # no WAL beside it


def test_a_new_home_starts_from_the_template_and_an_existing_one_is_left_alone(tmp_path):
    keep_template(database(tmp_path / "first.db"))
    new = tmp_path / "home" / "prefect" / "prefect.db"
    assert seed_from_template(new)
    assert rows(new, "block_type") == [("secret",)] and rows(new, "flow_run") == []
    with contextlib.closing(sqlite3.connect(new)) as db:
        db.execute("INSERT INTO flow_run VALUES ('mine')")
        db.commit()
    assert not seed_from_template(new)
    assert rows(new, "flow_run") == [("mine",)]


def test_without_a_template_nothing_is_copied_and_one_template_is_kept(tmp_path):
    new = tmp_path / "home" / "prefect.db"
    assert not seed_from_template(new) and not new.exists()
    keep_template(database(tmp_path / "first.db"))
    kept = template_path().stat().st_mtime_ns
    other = database(tmp_path / "second.db")
    keep_template(other)
    assert template_path().stat().st_mtime_ns == kept


def test_a_database_that_cannot_be_read_keeps_no_template(tmp_path):
    broken = tmp_path / "prefect.db"
    broken.write_text("not a database")
    keep_template(broken)
    assert not template_path().exists()
    assert not list(template_path().parent.glob(".*"))  # no half-written copy either


def test_the_server_database_is_read_from_prefects_settings(tmp_path):
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    url = f"sqlite+aiosqlite:///{tmp_path}/prefect.db"
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: url}):
        assert database_path() == tmp_path / "prefect.db"
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: "postgresql+asyncpg://u@h/db"}):
        assert database_path() is None  # only a SQLite file is seeded


def test_a_new_home_starts_from_the_machines_copy_else_the_installations(tmp_path):
    installed = prefect_db_template.installed_template_path()
    keep_template(database(tmp_path / "at_install.db"), installed)
    with contextlib.closing(sqlite3.connect(installed)) as db:
        db.execute("INSERT INTO block_type VALUES ('made at install')")
        db.commit()
    first = tmp_path / "first" / "prefect.db"
    assert seed_from_template(first)
    assert ("made at install",) in rows(first, "block_type")

    keep_template(database(tmp_path / "on_this_machine.db"))
    second = tmp_path / "second" / "prefect.db"
    assert seed_from_template(second)
    assert ("made at install",) not in rows(second, "block_type")
