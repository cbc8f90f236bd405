"""A new home starts from a kept Prefect database: the installation's, then the machine's.

Two fresh homes share one ``UNITRAIN_CACHE``, empty at first: the first home's
local stack starts from the database ``make setup`` migrated and keeps an emptied
copy of its own; the second starts from that copy, and its job runs and is
recorded in its own database only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.test_cli_run import unitrain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JOB = {"action": "train", "plugin": "synthetic", "params": {"dataset": 1, "hyperparameter": {}}}


def rows(database: Path, query: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return [value for (value,) in db.execute(query)]


def mark(template: Path) -> None:
    """Add a block type no migration makes, to see where the second home's database came from."""
    with contextlib.closing(sqlite3.connect(template)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(block_type)")]
        changed = {
            "id": "'0badc0de-0000-4000-8000-000000000000'",
            "name": "'From the template'",
            "slug": "'from-the-template'",
        }
        values = ", ".join(changed.get(c, f'"{c}"') for c in columns)
        db.execute(
            f"INSERT INTO block_type ({', '.join(columns)}) SELECT {values} FROM block_type LIMIT 1"
        )
        db.commit()


def run_in(home: Path, cache: Path, name: str) -> None:
    job = home.parent / f"{name}.json"
    job.write_text(json.dumps({**JOB, "params": {**JOB["params"], "name": name}}))
    try:
        done = unitrain(home, "run", str(job), extra_env={"UNITRAIN_CACHE": str(cache)})
    finally:
        unitrain(home, "stop")
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_second_home_starts_from_the_first_homes_prefect_database(tmp_path: Path):
    from unitrain.runtime.prefect_db_template import installed_template_path

    installed = installed_template_path()
    assert installed.is_file(), "make setup migrates Prefect's database for the installation"
    cache = tmp_path / "cache"
    first, second = tmp_path / "first", tmp_path / "second"
    run_in(first, cache, "first")
    # Block types get random IDs when a server registers them: these are the installation's.
    block_ids = "SELECT id FROM block_type ORDER BY slug"
    assert rows(first / "prefect" / "prefect.db", block_ids) == rows(installed, block_ids)
    (template,) = cache.glob("prefect-*.db")
    assert rows(template, "SELECT name FROM flow_run") == []  # nothing of any job is kept
    assert rows(template, "SELECT count(*) FROM block_type")[0] > 0
    mark(template)

    run_in(second, cache, "second")
    database = second / "prefect" / "prefect.db"
    assert "from-the-template" in rows(database, "SELECT slug FROM block_type")
    assert rows(database, "SELECT name FROM flow_run") == ["second"]
    assert rows(first / "prefect" / "prefect.db", "SELECT name FROM flow_run") == ["first"]
