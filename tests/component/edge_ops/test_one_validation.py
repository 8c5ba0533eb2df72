"""One validation for every door a coverage comes in by: ``offhours coverage check FILE``,
``PUT /coverage`` and the config topic the workers read.

Three faults a worker cannot serve: a staff ``notify`` URI of a scheme no notifier has
(``sms:``), a template variable the worker does not pass, and the customer's name in a
public template. Each is refused by the loader (:func:`schedules.load_coverage_text`),
which all three doors call, with a problem naming the team, the member or template,
and what to write instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from edge.config_store import SEEDED, MemoryConfigStore
from tests.support.edge_ops_one_validation import CASES
from tests.support.ops import AUTH

ROOT = Path(__file__).resolve().parents[3]




@pytest.mark.parametrize(("text", "line", "problem"), CASES)
def test_coverage_check_exits_2_with_the_problem(tmp_path: Path, text: str, line: int, problem: str) -> None:
    """The file check refuses the file: exit 2, nothing on stdout, the problem with its line on stderr."""
    path = tmp_path / "coverage.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "offhours", "coverage", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    expected = (2, "", [f"{path}: invalid coverage file, 1 problem:", f"  {path}:{line}: {problem}"])
    assert expected == (result.returncode, result.stdout, result.stderr.splitlines())


@pytest.mark.parametrize(("text", "line", "problem"), CASES)
async def test_put_coverage_is_refused_with_the_problem(
    client: TestClient, store: MemoryConfigStore, text: str, line: int, problem: str
) -> None:
    """PUT /coverage answers 422 with the same problem (the file named, never a host path), and nothing changes."""
    before = store.current()
    response = await client.put(
        "/api/v1/coverage", data=text,
        headers={**AUTH, "If-Match": f'"{before.etag}"', "Content-Type": "application/yaml"},
    )
    body = await response.json(content_type=None)
    message, hint = problem.split("; ", 1)
    expected = (422, [{"file": "coverage.yaml", "line": line, "message": message, "hint": hint}])
    assert expected == (response.status, body.get("problems"))
    assert (before, [SEEDED]) == (store.current(), [event["what"] for event in store.audit])

