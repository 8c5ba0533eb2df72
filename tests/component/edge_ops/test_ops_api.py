"""The operations API on a live local server, with the memory configuration store."""

from __future__ import annotations

from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient

from edge.config_store import SEEDED, MemoryConfigStore
from tests.support.ops import AUTH, COVERAGE_TEXT, ROME, FixedClock

MASKED_TEXT = COVERAGE_TEXT.replace("slack:https://hooks.slack.example/T1/B1/abc", "slack:https://hooks.slack.example/T1/B…/****").replace(
    "webhook:https://pager.example/hook", "webhook:https://pager.example/****")
STRIKE = {"from": "2026-11-24 14:00", "to": "2026-11-25 00:00", "mode": "closed", "note": "sciopero"}
LUCA_TONIGHT = {"from": "2026-11-23 19:00", "to": "2026-11-24 09:00", "member": "luca"}


def _etag(response) -> str:
    return response.headers["ETag"]


class TestAuthentication:
    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="no_header"),
            pytest.param({"Authorization": "Bearer wrong"}, id="unknown_token"),
            pytest.param({"Authorization": "Basic czNjcjN0LWFubmE="}, id="basic_scheme"),
            pytest.param({"Authorization": "Bearer "}, id="empty_token"),
        ],
    )
    async def test_refused_without_a_valid_token(self, client: TestClient, headers: dict[str, str]) -> None:
        """A request without a known bearer token gets 401, a Bearer challenge and problem+json."""
        response = await client.get("/api/v1/coverage", headers=headers)
        body = await response.json(content_type=None)
        assert (401, "application/problem+json") == (response.status, response.content_type)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert 401 == body["status"]

    async def test_accepted_with_a_valid_token(self, client: TestClient) -> None:
        """The configured token opens the API."""
        response = await client.get("/api/v1/teams", headers=AUTH)
        assert 200 == response.status

    async def test_openapi_document_needs_no_token(self, client: TestClient) -> None:
        """The OpenAPI 3.1 document is served without a token and names every path."""
        response = await client.get("/api/v1/openapi.json")
        document = await response.json()
        assert (200, "3.1.0") == (response.status, document["openapi"])
        assert {"/coverage", "/teams/{team}/overrides", "/actions/{token}"} <= set(document["paths"])
        assert [{"url": "/api/v1"}] == document["servers"]


class TestCoverageDocument:
    async def test_get_returns_the_yaml_and_an_etag(self, client: TestClient, store: MemoryConfigStore) -> None:
        """GET /coverage answers the operator's text as written (secrets masked), with the document's ETag."""
        response = await client.get("/api/v1/coverage", headers=AUTH)
        assert (MASKED_TEXT, f'"{store.current().etag}"') == (await response.text(), _etag(response))

    async def test_get_unmasked_returns_the_stored_text(self, client: TestClient) -> None:
        """An admin token asking for ?unmasked=true reads the text as stored."""
        response = await client.get("/api/v1/coverage", params={"unmasked": "true"}, headers=AUTH)
        assert COVERAGE_TEXT == await response.text()

    async def test_get_as_json_returns_the_document(self, client: TestClient) -> None:
        """Accept: application/json answers the whole configuration document (secrets masked)."""
        response = await client.get("/api/v1/coverage", headers={**AUTH, "Accept": "application/json"})
        document = await response.json()
        assert (MASKED_TEXT, [], 1) == (document["yaml"], document["overrides"], document["version"])

    async def test_if_none_match_answers_not_modified(self, client: TestClient) -> None:
        """A client holding the current ETag gets 304."""
        first = await client.get("/api/v1/coverage", headers=AUTH)
        again = await client.get("/api/v1/coverage", headers={**AUTH, "If-None-Match": _etag(first)})
        assert 304 == again.status

    async def test_put_without_if_match_is_refused(self, client: TestClient, store: MemoryConfigStore) -> None:
        """PUT without If-Match gets 428 and changes nothing."""
        response = await client.put("/api/v1/coverage", data=COVERAGE_TEXT, headers=AUTH)
        assert (428, 1) == (response.status, store.current().version)

    async def test_put_with_a_stale_etag_is_refused(self, client: TestClient, store: MemoryConfigStore) -> None:
        """A second operator writing over a version they did not read gets 412; the first change stays."""
        stale = _etag(await client.get("/api/v1/coverage", headers=AUTH))
        changed = COVERAGE_TEXT.replace("name: Assistenza Italia", "name: Assistenza Clienti")
        first = await client.put("/api/v1/coverage", data=changed, headers={**AUTH, "If-Match": stale})
        second = await client.put("/api/v1/coverage", data=COVERAGE_TEXT, headers={**AUTH, "If-Match": stale})
        assert (200, 412) == (first.status, second.status)
        assert (changed, 2) == (store.current().yaml, store.current().version)
        assert f'"{store.current().etag}"' == _etag(second)

    @pytest.mark.parametrize(
        "as_json",
        [pytest.param(False, id="yaml_body"), pytest.param(True, id="json_body")],
    )
    async def test_put_with_the_current_etag_replaces(self, client: TestClient, store: MemoryConfigStore, as_json: bool) -> None:
        """PUT with the current ETag replaces the file, bumps the version and answers the new ETag."""
        etag = _etag(await client.get("/api/v1/coverage", headers=AUTH))
        changed = COVERAGE_TEXT.replace('sat: ["10:00-18:00 reduced"]', 'sat: ["10:00-14:00 reduced"]')
        headers = {**AUTH, "If-Match": etag}
        if as_json:
            response = await client.put("/api/v1/coverage", json={"yaml": changed}, headers=headers)
        else:
            response = await client.put("/api/v1/coverage", data=changed, headers={**headers, "Content-Type": "application/yaml"})
        body = await response.json()
        assert (200, 2, changed) == (response.status, body["version"], store.current().yaml)
        assert f'"{body["etag"]}"' == _etag(response)
        assert changed == await (await client.get("/api/v1/coverage", params={"unmasked": "1"}, headers=AUTH)).text()

    async def test_invalid_file_is_refused_with_every_problem(self, client: TestClient, store: MemoryConfigStore) -> None:
        """An invalid file gets 422 listing each problem with its line, and nothing changes."""
        before = store.current()
        broken = (
            COVERAGE_TEXT.replace("timezone: Europe/Rome ", "timezone: Europe/Roma ")
            .replace('daily: ["08:00-20:00 open"', 'daily: ["08:00-26:00 open"')
        )
        response = await client.put("/api/v1/coverage", data=broken, headers={**AUTH, "If-Match": f'"{before.etag}"'})
        body = await response.json(content_type=None)
        assert (422, "application/problem+json") == (response.status, response.content_type)
        assert [4, 32] == [problem["line"] for problem in body["problems"]]
        assert all(problem["hint"] for problem in body["problems"])
        assert (before, [SEEDED]) == (store.current(), [event["what"] for event in store.audit])


class TestCoverageQueries:
    async def test_coverage_now_is_the_contract_object(self, client: TestClient, store: MemoryConfigStore, clock: FixedClock) -> None:
        """Without 'at' the coverage is the team's at the clock's now, in the shape of `offhours coverage at` (README: Command line)."""
        response = await client.get("/api/v1/teams/care-it/coverage", headers=AUTH)
        expected = store.coverage().teams["care-it"].at(clock()).to_contract()
        assert expected == await response.json()
        assert "reduced" == expected["mode"]

    @pytest.mark.parametrize(
        ("at", "mode", "instant"),
        [
            pytest.param("2026-11-24T10:00", "open", "2026-11-24T10:00:00+01:00", id="local_time_without_offset"),
            pytest.param("2026-11-24T09:30:00Z", "open", "2026-11-24T10:30:00+01:00", id="utc_instant"),
            pytest.param("2026-11-29T12:00", "closed", "2026-11-29T12:00:00+01:00", id="sunday_closed"),
            pytest.param("2026-03-29T02:30", "closed", "2026-03-29T03:00:00+02:00", id="spring_skip_hour"),
        ],
    )
    async def test_coverage_at_an_instant(self, client: TestClient, at: str, mode: str, instant: str) -> None:
        """'at' is ISO 8601; without an offset it is read in the team's zone (gap: first instant after)."""
        body = await (await client.get("/api/v1/teams/care-it/coverage", params={"at": at}, headers=AUTH)).json()
        assert (mode, instant) == (body["mode"], body["at"])

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            pytest.param("/api/v1/teams/care-fr/coverage", 404, id="unknown_team"),
            pytest.param("/api/v1/teams/care-it/coverage?at=tomorrow", 400, id="bad_time"),
            pytest.param("/api/v1/teams/care-it/coverage?at=9999-12-31T23:59", 400, id="year_out_of_range"),
            pytest.param("/api/v1/teams/care-it/week?from=23/11/2026", 400, id="bad_date"),
        ],
    )
    async def test_bad_queries_are_problems(self, client: TestClient, path: str, status: int) -> None:
        """Unknown teams and unreadable times answer problem+json, never a server error."""
        response = await client.get(path, headers=AUTH)
        assert (status, "application/problem+json") == (response.status, response.content_type)

    async def test_week_lists_stretches_and_shifts(self, client: TestClient) -> None:
        """The week from a local date covers seven days: stretches of modes and on-call shifts."""
        body = await (await client.get("/api/v1/teams/care-it/week", params={"from": "2026-11-23"}, headers=AUTH)).json()
        assert ("2026-11-23T00:00:00+01:00", "2026-11-30T00:00:00+01:00") == (body["from"], body["to"])
        assert {"start": "2026-11-23T09:00:00+01:00", "end": "2026-11-23T19:00:00+01:00", "mode": "open",
                "source": "hours", "note": None} == body["stretches"][1]
        assert [
            {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-23T09:00:00+01:00", "member": "giulia"},
            {"start": "2026-11-23T09:00:00+01:00", "end": "2026-11-30T00:00:00+01:00", "member": "marta"},
        ] == body["on_call"]

    async def test_week_names_a_holiday_only_where_it_decides(self, client: TestClient) -> None:
        """Easter Sunday and Easter Monday are two stretches, each with its own name, and the
        weekend hours around them carry none (merged, Monday was named "Easter Sunday")."""
        body = await (await client.get("/api/v1/teams/care-it/week", params={"from": "2026-04-04"}, headers=AUTH)).json()
        closed = [(s["start"], s["end"], s["source"], s["note"]) for s in body["stretches"] if s["mode"] == "closed"]
        assert [
            ("2026-04-04T18:00:00+02:00", "2026-04-05T00:00:00+02:00", "hours", None),
            ("2026-04-05T00:00:00+02:00", "2026-04-06T00:00:00+02:00", "holiday", "Easter Sunday"),
            ("2026-04-06T00:00:00+02:00", "2026-04-07T00:00:00+02:00", "holiday", "Easter Monday"),
            ("2026-04-07T00:00:00+02:00", "2026-04-07T09:00:00+02:00", "hours", None),
        ] == closed[1:5]

    async def test_on_call_names_the_member(self, client: TestClient) -> None:
        """On call at now: the rotation's member of the week, with the staff name."""
        body = await (await client.get("/api/v1/teams/care-it/on-call", headers=AUTH)).json()
        assert [{"id": "marta", "name": "Marta Rossi"}] == body["on_call"]

    async def test_teams_are_listed_without_notify_targets(self, client: TestClient) -> None:
        """GET /teams lists every team; staff notify URIs (some are secrets) are not shown."""
        body = await (await client.get("/api/v1/teams", headers=AUTH)).json()
        assert ["care-it", "care-us"] == [team["id"] for team in body["teams"]]
        assert "hooks.slack" not in str(body)


class TestOverrides:
    async def test_strike_closure_closes_the_team(self, client: TestClient) -> None:
        """'Close Milan tomorrow from 14:00 for a strike': coverage at 15:00 says closed, source override."""
        added = await client.post("/api/v1/teams/care-it/overrides", json=STRIKE, headers=AUTH)
        override = await added.json()
        coverage = await (await client.get(
            "/api/v1/teams/care-it/coverage", params={"at": "2026-11-24T15:00"}, headers=AUTH)).json()
        assert (201, "coverage") == (added.status, override["kind"])
        assert override["id"].startswith("ovr-")
        assert ("closed", "override", "2026-11-25T09:00:00+01:00") == (coverage["mode"], coverage["source"], coverage["next_open"])

    async def test_luca_covers_tonight(self, client: TestClient) -> None:
        """'Luca covers tonight': an on-call override replaces marta, the rotation's member, until morning."""
        added = await client.post("/api/v1/teams/care-it/overrides", json=LUCA_TONIGHT, headers=AUTH)
        tonight = await (await client.get("/api/v1/teams/care-it/on-call", headers=AUTH)).json()
        morning = await (await client.get(
            "/api/v1/teams/care-it/on-call", params={"at": "2026-11-24T09:00"}, headers=AUTH)).json()
        assert (201, "on_call") == (added.status, (await added.json())["kind"])
        assert (["luca"], ["marta"]) == ([m["id"] for m in tonight["on_call"]], [m["id"] for m in morning["on_call"]])

    async def test_overlapping_on_call_overrides_are_refused(self, client: TestClient) -> None:
        """Two on-call overrides for overlapping times: the second is refused with 422."""
        first = await client.post("/api/v1/teams/care-it/overrides", json=LUCA_TONIGHT, headers=AUTH)
        second = await client.post("/api/v1/teams/care-it/overrides", headers=AUTH, json={
            "from": "2026-11-24 08:00", "to": "2026-11-24 10:00", "member": "giulia"})
        assert (201, 422) == (first.status, second.status)

    async def test_overlapping_override_is_refused(self, client: TestClient, store: MemoryConfigStore) -> None:
        """An override overlapping one in the file gets 422 naming the overlap, and nothing changes."""
        before = store.current()
        response = await client.post("/api/v1/teams/care-it/overrides", headers=AUTH, json={
            "from": "2026-12-25 10:00", "to": "2026-12-25 12:00", "mode": "open"})
        body = await response.json(content_type=None)
        assert (422, before) == (response.status, store.current())
        assert "overlaps" in body["problems"][0]["message"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            pytest.param({"from": "2026-11-24 14:00", "mode": "closed"}, "'to'", id="missing_to"),
            pytest.param({**STRIKE, "mode": "shut"}, "'mode'", id="unknown_mode"),
            pytest.param({**LUCA_TONIGHT, "mode": "closed"}, "'mode'", id="mode_and_member"),
            pytest.param({**STRIKE, "from": "tomorrow"}, "'from'", id="unreadable_time"),
            pytest.param({**STRIKE, "colour": "red"}, "'colour'", id="unknown_field"),
        ],
    )
    async def test_invalid_override_bodies(self, client: TestClient, body: dict, field: str) -> None:
        """A malformed override is refused with 422 naming the field."""
        response = await client.post("/api/v1/teams/care-it/overrides", json=body, headers=AUTH)
        problems = (await response.json(content_type=None))["problems"]
        assert 422 == response.status
        assert any(problem["message"].startswith(field) for problem in problems)

    async def test_unknown_member_is_refused(self, client: TestClient) -> None:
        """An on-call override for someone not on the staff is refused by the loader's rule."""
        response = await client.post("/api/v1/teams/care-it/overrides", headers=AUTH, json={**LUCA_TONIGHT, "member": "mario"})
        assert 422 == response.status

    async def test_remove_an_override(self, client: TestClient, store: MemoryConfigStore) -> None:
        """Deleting an API override restores the weekly hours; deleting it again is 404."""
        override = await (await client.post("/api/v1/teams/care-it/overrides", json=STRIKE, headers=AUTH)).json()
        listed = await (await client.get("/api/v1/teams/care-it/overrides", headers=AUTH)).json()
        removed = await client.delete(f"/api/v1/teams/care-it/overrides/{override['id']}", headers=AUTH)
        again = await client.delete(f"/api/v1/teams/care-it/overrides/{override['id']}", headers=AUTH)
        coverage = await (await client.get(
            "/api/v1/teams/care-it/coverage", params={"at": "2026-11-24T15:00"}, headers=AUTH)).json()
        assert [override["id"]] == [o["id"] for o in listed["overrides"]]
        assert (200, 404) == (removed.status, again.status)
        assert ("open", "hours", ()) == (coverage["mode"], coverage["source"], store.current().overrides)

    async def test_file_replacement_keeps_api_overrides(self, client: TestClient, store: MemoryConfigStore) -> None:
        """PUT /coverage replaces the file and keeps the overrides added through the API."""
        override = await (await client.post("/api/v1/teams/care-it/overrides", json=STRIKE, headers=AUTH)).json()
        changed = COVERAGE_TEXT.replace("name: Assistenza Italia", "name: Assistenza")
        response = await client.put("/api/v1/coverage", data=changed, headers={**AUTH, "If-Match": f'"{store.current().etag}"'})
        assert 200 == response.status
        assert [override["id"]] == [o["id"] for o in store.current().overrides]
        assert "closed" == store.coverage().teams["care-it"].mode_at(datetime(2026, 11, 24, 15, tzinfo=ROME))
