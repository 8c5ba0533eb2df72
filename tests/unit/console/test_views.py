"""The console's page data against the engine: the timeline is exactly what ``coverage at`` answers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from console import views
from console.projection import Projection
from schedules import load_coverage_text
from tests.support.ops import COVERAGE_TEXT

COVERAGE = load_coverage_text(COVERAGE_TEXT, "coverage.yaml")


@pytest.mark.parametrize(("team_id", "first"), [("care-it", date(2026, 12, 21)), ("care-it", date(2027, 3, 22)),
                                                 ("care-us", date(2027, 3, 8)), ("care-us", date(2026, 10, 26))])
def test_the_effective_lane_is_coverage_at_at_every_boundary(team_id: str, first: date) -> None:
    team = COVERAGE.teams[team_id]
    data = views.timeline(team, first, 28)
    effective = [s for row in data["rows"] for s in row["segments"] if s["lane"] == "effective"]
    assert effective
    for segment in effective:
        start, end = datetime.fromisoformat(segment["start"]), datetime.fromisoformat(segment["end"])
        assert team.at(start).mode == segment["mode"], segment
        assert team.at(end - timedelta(seconds=1)).mode == segment["mode"], segment
        assert team.at(start).source == segment["source"], segment
    # The lane covers the window without holes: each piece ends where the next starts.
    for before, after in zip(effective, effective[1:], strict=False):
        assert datetime.fromisoformat(before["end"]) == datetime.fromisoformat(after["start"])
    assert effective[0]["start"] == data["from"] and effective[-1]["end"] == data["to"]


def test_dst_days_are_marked_with_their_length() -> None:
    data = views.timeline(COVERAGE.teams["care-it"], date(2027, 3, 22), 14)
    dst = [row for row in data["rows"] if row["dst"]]
    assert [(row["day"], row["hours"]) for row in dst] == [("2027-03-28", 23.0)]
    autumn = views.timeline(COVERAGE.teams["care-it"], date(2026, 10, 19), 14)
    assert [(row["day"], row["hours"]) for row in autumn["rows"] if row["dst"]] == [("2026-10-25", 25.0)]


def test_overnight_spans_are_marked_on_both_sides_of_midnight() -> None:
    data = views.timeline(COVERAGE.teams["care-us"], date(2026, 11, 23), 7)
    marked = [s for row in data["rows"] for s in row["segments"] if s["lane"] == "hours" and s["overnight"]]
    assert {s["overnight_side"] for s in marked} == {"left", "right"}


def test_the_now_panel_is_the_engine_at_the_clock() -> None:
    now = datetime(2026, 11, 23, 20, 0, tzinfo=ZoneInfo("Europe/Rome"))
    stats = Projection(lambda: COVERAGE).promise_stats()
    panel = {team["id"]: team for team in views.now_panel(COVERAGE, now, stats)}
    at = COVERAGE.teams["care-it"].at(now)
    assert panel["care-it"]["mode"] == at.mode == "reduced"
    assert panel["care-it"]["until_iso"] == at.to_contract()["until"]
    assert panel["care-it"]["transition"]["text"] == "closes Tue 00:00 Europe/Rome, in 4 h 0 min"
    assert [m["id"] for m in panel["care-it"]["on_call"]] == list(at.on_call)
    assert panel["care-it"]["promise"]["within"] == "40 min"


def test_the_preview_is_the_worker_policy() -> None:
    projection = Projection(lambda: COVERAGE)
    team = COVERAGE.teams["care-it"]
    at = datetime(2026, 12, 24, 2, 0, tzinfo=team.timezone)
    result = views.preview(projection.triage(), team, account="acme.it.whatsapp", channel="whatsapp", kind="dm", at=at,
                           text="ciao", lang="it", author="Ana", stats=projection.promise_stats())
    assert result["decision"]["action"] == "queue" and result["mode"] == "closed"
    assert result["ack"]["lang"] == "it" and "Ana" in result["ack"]["text"]
    assert result["window"]["closes_iso"] == "2026-12-25T02:00:00+01:00"
