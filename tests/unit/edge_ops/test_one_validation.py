"""One validation for every door a coverage comes in by: ``offhours coverage check FILE``,
``PUT /coverage`` and the config topic the workers read.

Three faults a worker cannot serve: a staff ``notify`` URI of a scheme no notifier has
(``sms:``), a template variable the worker does not pass, and the customer's name in a
public template. Each is refused by the loader (:func:`schedules.load_coverage_text`),
which all three doors call, with a problem naming the team, the member or template,
and what to write instead.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from edge.config_store import ConfigDocument, MemoryConfigStore
from schedules import CoverageInvalid
from schedules.coverage import Team
from schedules.model import TriageOptions, WeeklyHours
from tests.support.edge_ops_one_validation import CASES


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

