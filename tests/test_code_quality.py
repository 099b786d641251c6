"""The linters are part of the test command: ruff (lint and format) and mypy over bot/ and index/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The tools the `test` extra installs lie beside this interpreter (not resolved: a venv's python is a symlink).
BIN = Path(sys.executable).parent
PACKAGES = ["bot", "index"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["ruff", "check", *PACKAGES], ["ruff", "format", "--check", *PACKAGES], ["mypy", *PACKAGES]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_passes(command: list[str]) -> None:
    tool = BIN / command[0]
    if not tool.exists():
        pytest.fail(f"{tool} is missing; install the test dependencies: .venv/bin/pip install -e '.[test]'")
    result = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, f"`{' '.join(command)}` failed:\n{result.stdout}{result.stderr}"
