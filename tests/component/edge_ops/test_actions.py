"""On-call actions through the API and through signed links, and the audit of changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from edge.actions import MemoryActionSink
from edge.config_store import MemoryConfigStore
from records.links import LinkSigner
from tests.support.ops import AUTH, COVERAGE_TEXT, IDENTITY, FixedClock

CONVERSATION = "fb:PAGE_111:PSID_222"


class TestClaimThroughTheApi:
    async def test_claim_is_recorded_with_who_and_when(self, client: TestClient, sink: MemoryActionSink, clock: FixedClock) -> None:
        """A claim answers 202 and records member, event, the token's identity and the time."""
        response = await client.post(
            f"/api/v1/conversations/{CONVERSATION}/claim", json={"member": "marta", "event_id": "fb:m_abc123"}, headers=AUTH)
        [action] = sink.actions
        assert 202 == response.status
        assert {"action": "claim", "conversation": CONVERSATION, "event_id": "fb:m_abc123", "member": "marta",
                "by": IDENTITY, "via": "api", "at": "2026-11-23T20:00:00+01:00"} == {
                    k: v for k, v in action.items() if k != "action_id"}

    async def test_answered_is_recorded(self, client: TestClient, sink: MemoryActionSink) -> None:
        """Marking a conversation answered needs no body and records an 'answered' action."""
        response = await client.post(f"/api/v1/conversations/{CONVERSATION}/answered", headers=AUTH)
        assert (202, ["answered"]) == (response.status, [a["action"] for a in sink.actions])

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({}, id="no_member"),
            pytest.param({"member": 7}, id="member_not_text"),
            pytest.param({"member": "marta", "event_id": ""}, id="empty_event_id"),
        ],
    )
    async def test_invalid_claim_is_refused(self, client: TestClient, sink: MemoryActionSink, body: dict) -> None:
        """A claim without a usable member or event id gets 422 and records nothing."""
        response = await client.post(f"/api/v1/conversations/{CONVERSATION}/claim", json=body, headers=AUTH)
        assert (422, []) == (response.status, sink.actions)

    async def test_claim_needs_a_token(self, client: TestClient, sink: MemoryActionSink) -> None:
        """Without a bearer token the API claims nothing."""
        response = await client.post(f"/api/v1/conversations/{CONVERSATION}/claim", json={"member": "marta"})
        assert (401, []) == (response.status, sink.actions)


class TestClaimThroughALink:
    async def test_opening_the_link_shows_a_button_and_changes_nothing(
        self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink
    ) -> None:
        """GET on a valid link is a page with a POST button; link scanners cannot claim by fetching it."""
        token = signer.token("claim", CONVERSATION, "marta")
        response = await client.get(f"/api/v1/actions/{token}")
        page = await response.text()
        assert (200, "text/html", []) == (response.status, response.content_type, sink.actions)
        assert f'<form method="post" action="{token}">' in page

    async def test_pressing_the_button_claims(self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink) -> None:
        """POST on a valid link records the claim as the link's member, with no bearer token."""
        token = signer.token("claim", CONVERSATION, "marta")
        response = await client.post(f"/api/v1/actions/{token}")
        assert 200 == response.status
        assert [("claim", "marta", "link:marta", "link")] == [
            (a["action"], a["member"], a["by"], a["via"]) for a in sink.actions]

    @pytest.mark.parametrize("method", [pytest.param("GET", id="opened_again"), pytest.param("POST", id="pressed_again")])
    async def test_a_used_link_answers_already_used(
        self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink, method: str
    ) -> None:
        """A link works once: opened or pressed after its use it answers 409 "already used" and records nothing."""
        token = signer.token("claim", CONVERSATION, "marta")
        first = await client.post(f"/api/v1/actions/{token}")
        again = await client.request(method, f"/api/v1/actions/{token}")
        assert (200, 409, 1) == (first.status, again.status, len(sink.actions))
        assert "already used" in await again.text()

    async def test_two_presses_at_once_record_one_action(self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink) -> None:
        """Two presses of one link at the same time: one records, the other is told it was used."""
        token = signer.token("answered", CONVERSATION, "marta")
        statuses = sorted(r.status for r in await asyncio.gather(
            client.post(f"/api/v1/actions/{token}"), client.post(f"/api/v1/actions/{token}")))
        assert ([200, 409], 1) == (statuses, len(sink.actions))

    async def test_a_link_whose_action_failed_can_be_used_again(self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink) -> None:
        """When the action cannot be recorded, the link is not spent."""
        token = signer.token("claim", CONVERSATION, "marta")
        recorded = sink.record

        async def failing(action: dict) -> None:
            raise ConnectionError("broker down")

        sink.record = failing  # type: ignore[method-assign]
        failed = await client.post(f"/api/v1/actions/{token}")
        sink.record = recorded  # type: ignore[method-assign]
        retried = await client.post(f"/api/v1/actions/{token}")
        assert (500, 200, 1) == (failed.status, retried.status, len(sink.actions))

    @pytest.mark.parametrize("method", [pytest.param("GET", id="open"), pytest.param("POST", id="press")])
    async def test_tampered_link_is_refused(self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink, method: str) -> None:
        """A link whose payload was changed (another member) is refused with 403."""
        genuine = signer.token("claim", CONVERSATION, "marta")
        forged_payload = signer.token("claim", CONVERSATION, "luca").split(".")[0]
        forged = f"{forged_payload}.{genuine.split('.')[1]}"
        response = await client.request(method, f"/api/v1/actions/{forged}")
        assert (403, []) == (response.status, sink.actions)

    async def test_expired_link_is_refused(self, client: TestClient, signer: LinkSigner, sink: MemoryActionSink, clock: FixedClock) -> None:
        """A link used after its lifetime gets 410 Gone and records nothing."""
        token = signer.token("claim", CONVERSATION, "marta")
        clock.advance(timedelta(hours=12))
        response = await client.post(f"/api/v1/actions/{token}")
        assert (410, []) == (response.status, sink.actions)


class TestAudit:
    async def test_a_file_replacement_is_audited(self, client: TestClient, store: MemoryConfigStore, clock: FixedClock) -> None:
        """Replacing the file records who, when, what and which teams changed (no values)."""
        clock.advance(timedelta(minutes=5))
        changed = COVERAGE_TEXT.replace('sat: ["10:00-18:00 reduced"]', 'sat: ["10:00-14:00 reduced"]')
        await client.put("/api/v1/coverage", data=changed, headers={**AUTH, "If-Match": f'"{store.current().etag}"'})
        [seeded, event] = store.audit
        assert (IDENTITY, "2026-11-23T20:05:00+01:00", "replaced the coverage file", 2, 1) == (
            event["who"], event["at"], event["what"], event["version"], seeded["version"])
        assert {"from_version": 1, "to_version": 2, "yaml_lines_added": 1, "yaml_lines_removed": 1,
                "teams_added": [], "teams_removed": [], "teams_changed": ["care-it"],
                "overrides_added": [], "overrides_removed": []} == event["diff"]

    async def test_override_changes_are_audited(self, client: TestClient, store: MemoryConfigStore) -> None:
        """Adding and removing an override are two audit events naming the override."""
        override = await (await client.post("/api/v1/teams/care-it/overrides", headers=AUTH, json={
            "from": "2026-11-24 14:00", "to": "2026-11-25 00:00", "mode": "closed", "note": "sciopero"})).json()
        await client.delete(f"/api/v1/teams/care-it/overrides/{override['id']}", headers=AUTH)
        seeded, *changes = store.audit
        assert [([override["id"]], []), ([], [override["id"]])] == [
            (e["diff"]["overrides_added"], e["diff"]["overrides_removed"]) for e in changes]
        assert ["system:seed", IDENTITY, IDENTITY] == [e["who"] for e in [seeded, *changes]]
        assert override["id"] in changes[0]["what"]
