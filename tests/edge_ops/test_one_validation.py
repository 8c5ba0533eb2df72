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
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from edge.config_store import SEEDED, ConfigDocument, MemoryConfigStore
from schedules import CoverageInvalid
from schedules.coverage import Team
from schedules.model import TriageOptions, WeeklyHours

from .conftest import AUTH, COVERAGE_TEXT

ROOT = Path(__file__).resolve().parents[2]
US_TAIL = "    holidays: {country: US}\n"
assert COVERAGE_TEXT.endswith(US_TAIL)


def _us_template(kind: str, source: str) -> str:
    return COVERAGE_TEXT + f"    triage:\n      templates:\n        en:\n          {kind}: \"{source}\"\n"


# (coverage text, line, the problem as the file check prints it after "FILE:LINE: ")
CASES = [
    pytest.param(
        COVERAGE_TEXT.replace('"mailto:luca@example.com"', '"sms:+390612345678"'), 25,
        "team 'care-it', staff 'luca', 'notify': 'sms:' is not a notify scheme; "
        "write one of 'slack', 'teams', 'mailto', 'webhook', 'telegram', "
        "e.g. 'mailto:marta@example.com' or 'slack:https://hooks.slack.com/...'",
        id="unknown_notify_scheme",
    ),
    pytest.param(
        _us_template("dm", "Hi {{ first_name }}, order {{ order_number }} is with us"), 37,
        "team 'care-us', 'triage', 'templates' 'en', 'dm': unknown variable 'order_number'; use one of "
        "team_name, mode, reply_within_minutes, reply_by, next_open, staff_name, evening, paged, first_name",
        id="unknown_template_variable",
    ),
    pytest.param(
        _us_template("public", "Thanks {{ first_name }}, write to us privately"), 37,
        "team 'care-us', 'triage', 'templates' 'en', 'public': a public template cannot use 'first_name' "
        "(a public reply repeats nothing personal); leave the customer's name out of public templates; use it in 'dm'",
        id="customer_name_in_a_public_template",
    ),
]


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


@pytest.mark.parametrize(("text", "line", "problem"), CASES)
async def test_the_workers_store_never_applies_it(
    store: MemoryConfigStore, text: str, line: int, problem: str
) -> None:
    """The config store the workers follow validates with the same loader: its followers keep the coverage they have."""
    applied: list[object] = []
    await store.follow(applied.append)
    with pytest.raises(CoverageInvalid) as refused:
        await store.publish(ConfigDocument(yaml=text), expected_etag=None, who="ops:anna", what="test")
    assert ([line], 1, 1) == ([p.line for p in refused.value.problems], len(applied), store.current().version)


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        pytest.param("dm", "Hi {{ first_name }}, order {{ order_number }} is with us", id="unknown_template_variable"),
        pytest.param("public", "Thanks {{ first_name }}, write to us privately", id="customer_name_in_a_public_template"),
    ],
)
def test_the_worker_refuses_what_the_loader_refuses(kind: str, source: str) -> None:
    """Should a template reach a worker unchecked, its acknowledgment writer refuses it too (the loader is first)."""
    from triage.acks import AckTemplateError, AckWriter

    team = Team("care-us", name="Care", timezone=ZoneInfo("America/New_York"), hours=WeeklyHours(((),) * 7),
                triage=TriageOptions(templates={"en": {kind: source}}))
    with pytest.raises(AckTemplateError):
        AckWriter(team)
