"""Shell completion, run by a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from unitrain.cli import _parser
from unitrain.completion import bash_script

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def complete(line: str) -> list[str]:
    """What bash offers after ``line`` (a trailing space starts a new word)."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = bash_script(_parser())
    script = (
        f"{program}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_unitrain_complete; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return [w for w in done.stdout.splitlines() if w]


def test_commands_subcommands_options_and_choices_complete():
    assert complete("unitrain jo") == ["jobs"]
    assert "show" in complete("unitrain jobs ") and "--json" in complete("unitrain jobs ")
    assert complete("unitrain datasets a") == ["add"]
    assert complete("unitrain run --v") == ["--verbose"]
    assert {"prefect", "mlflow"} <= set(complete("unitrain ui "))
    assert complete("unitrain models list --js") == ["--json"]


def test_a_job_file_is_left_to_file_name_completion():
    assert complete("unitrain run examples/") == []  # `complete -o default`: file names
