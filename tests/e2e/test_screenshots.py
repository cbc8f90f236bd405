"""The README's pictures are retaken from a real served stack (``docs/screenshots.py``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).parents[2]
PICTURES = (
    "prefect-flow-run.png",
    "prefect-trial-table.png",
    "prefect-summary.png",
    "mlflow-model-version.png",
)


def test_the_readmes_pictures_are_taken_from_a_served_stack(tmp_path: Path):
    if shutil.which("chromium") is None:
        pytest.skip("needs Chromium, a system package (apt-get install chromium)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "screenshots.py"), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    digests = set()
    for name in PICTURES:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert width == 1400 and height >= 1000, (name, width, height)
        digests.add(hashlib.sha256(data).hexdigest())
    assert len(digests) == len(PICTURES)  # four pages, not one error page four times
    # The README shows the pictures that the script takes.
    readme = (ROOT / "README.md").read_text()
    assert all(f"docs/images/{name}" in readme for name in PICTURES)
