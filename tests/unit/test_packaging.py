"""What installing unitrain puts on a user's import path: exactly one name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_wheel_installs_one_top_level_name_with_every_module(tmp_path):
    # Built from a clean copy: a build folder left in the checkout may hold stale modules.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("unitrain-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"unitrain"}
    shipped = {name for name in names if name.endswith(".py")}
    expected = {
        f"unitrain/{p.relative_to(ROOT / 'unitrain').as_posix()}"
        for p in (ROOT / "unitrain").rglob("*.py")
    }
    for folder in ("flows", "tasks", "plugins"):
        expected |= {
            f"unitrain/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*.py")
        }
    assert shipped == expected
