"""The command line in a pipe whose reader went away (``| head``): it ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "command",
    [
        ["coverage", "week", "examples/coverage.yaml", "--team", "care-us", "--from", "2026-11-23"],
        ["coverage", "at", "examples/coverage.yaml", "--team", "care-it", "--at", "2026-11-23T10:00"],
        ["coverage", "ics", "examples/coverage.yaml", "--team", "care-it", "--from", "2026-01-01", "--days", "400"],
        ["config", "check"],
    ],
    ids=["coverage week", "coverage at", "coverage ics", "config check"],
)
def test_a_reader_gone_away_ends_the_command_without_a_traceback(command: list[str]) -> None:
    """The read end is closed before the command writes: exit 0 and nothing on stderr but warnings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "offhours", *command], cwd=ROOT, env=env,
            stdout=write_end, stderr=subprocess.PIPE, timeout=60, check=False,
        )
    finally:
        os.close(write_end)
    stderr = done.stderr.decode()
    assert (0, False, False) == (done.returncode, "Traceback" in stderr, "Exception ignored" in stderr), stderr
