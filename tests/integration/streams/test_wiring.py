"""The responders inside the worker, end to end on the real embedded broker and fake platforms."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from offhours.replay import replay_settings
from records.links import LinkSigner
from records.wire import Notify, RouteRequest
from responders.config import AccountCredentials
from responders.fakes import FakeGraph, FakeSlack
from schedules import load_coverage
from streams.metrics import Metrics
from streams.outbox import claim_links, mode_from, on_call_from
from streams.worker import running_worker
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.streams_app import MONDAY_EVENING, ROME, event, read_until, send
from tests.support.streams_wiring import COVERAGE, TOKEN

EVENING_CLOCK = MONDAY_EVENING.timestamp() + 5  # the responders' now: just after the message


def evening_graph() -> FakeGraph:
    """The fake Graph API at the responders' now, knowing the two customers who wrote on Monday evening."""
    graph = FakeGraph({TOKEN}, clock=lambda: EVENING_CLOCK)
    for customer in ("PSID_222", "PSID_333"):
        graph.add_customer(customer, MONDAY_EVENING)
    return graph


def delivering(stream_settings, graph: FakeGraph, **changes):
    """Stream settings with one partition (outbox order = input order) and responders on the fakes."""
    responders = stream_settings.responders.model_copy(
        update={
            "graph_base_url": graph.url,
            "egress_allow": ("127.0.0.1",),
            "accounts": {"acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN)},
            "deliver": True,
        }
    )
    ops = stream_settings.ops.model_copy(update={"actions_topic": f"{stream_settings.app_id}.actions"})
    return stream_settings.with_overrides(partitions=1, responders=responders, ops=ops, **changes)


@pytest.mark.broker
class TestRespondersInTheWorker:
    async def test_reduced_hours_message_is_acknowledged_once_and_routed(self, stream_settings, tmp_path: Path) -> None:
        """One acknowledgment reaches the platform, the on-call member's Slack gets the route, a redelivery sends nothing more."""
        async with evening_graph() as graph, FakeSlack() as slack:
            coverage_file = tmp_path / "coverage.yaml"
            coverage_file.write_text(COVERAGE.format(slack=slack.webhook_url))
            settings = delivering(stream_settings, graph, coverage_file=coverage_file)
            metrics = Metrics()
            first = event("fb:m_w1", MONDAY_EVENING)
            other = event("fb:m_w2", MONDAY_EVENING, conversation="fb:PAGE_111:PSID_333",
                          author={"id": "PSID_333", "name": "Bo Chen", "followers": 3})
            async with running_worker(settings, load_coverage(coverage_file), reconcile=False,
                                      metrics=metrics, clock=lambda: EVENING_CLOCK):
                await send(settings, (b"fb:PAGE_111:PSID_222", first, []))
                [ack] = await graph.wait_for_requests(1, timeout=60)
                [route] = await slack.wait_for_requests(1, timeout=60)
                # The same event again, then another customer's: on one partition the
                # second acknowledgment at the platform proves the redelivery was handled.
                await send(settings, (b"fb:PAGE_111:PSID_222", first, []),
                           (b"fb:PAGE_111:PSID_333", other, []))
                requests = await graph.wait_for_requests(2, timeout=60)
                await slack.wait_for_requests(2, timeout=60)
        assert ["PSID_222", "PSID_333"] == [r.json()["recipient"]["id"] for r in requests]
        claim_url = route.json()["blocks"][-1]["elements"][0]["url"]
        assert claim_url.startswith(settings.ops.actions_base_url + "/")
        signer = LinkSigner(settings.ops.link_secret.get_secret_value(), ttl=settings.ops.link_ttl,
                            clock=lambda: MONDAY_EVENING)
        link = signer.verify(claim_url.rsplit("/", 1)[1])
        assert ("claim", "fb:PAGE_111:PSID_222", "luca") == (link.action, link.conversation, link.member)
        assert 2.0 == metrics.registry.get_sample_value("offhours_acks_sent_total", {"channel": "facebook"})
        assert "/PAGE_111/messages" in ack.path

    async def test_delivery_off_writes_the_outbox_and_sends_nothing(self, stream_settings) -> None:
        """With responders.deliver off the ack request is on the outbox and the platform hears nothing."""
        async with evening_graph() as graph:
            settings = delivering(stream_settings, graph)
            settings = settings.with_overrides(responders=settings.responders.model_copy(update={"deliver": False}))
            async with running_worker(settings, load_coverage(settings.coverage_file), reconcile=False) as app:
                await send(settings, (b"fb:PAGE_111:PSID_222", event("fb:m_w3", MONDAY_EVENING), []))
                acks = await read_until(settings, settings.acks_topic, 1)
                agents = sorted(agent.name for agent in app.agents.values())
        assert (1, [], False) == (len(acks), graph.requests, any("deliveries" in name for name in agents))


class TestReplaySettings:
    @pytest.mark.broker  # takes the session broker (stream_settings); runs in the -m broker steps
    def test_replay_never_delivers(self, stream_settings) -> None:
        """A replay's settings turn the responders off and give the run its own actions topic."""
        settings = replay_settings(stream_settings, Path("coverage.yaml"), run_id="r1")
        assert (False, "replay-r1.actions") == (settings.responders.deliver, settings.ops.actions_topic)


class TestOnCallAndClaimLinks:
    @pytest.mark.parametrize(
        ("team", "at", "expected"),
        [
            pytest.param("care-it", datetime(2026, 11, 16, 21, 0, tzinfo=ROME), ["marta"], id="marta_week"),
            pytest.param("care-it", datetime(2026, 11, 23, 21, 0, tzinfo=ROME), ["luca"], id="luca_week"),
            pytest.param("care-it", datetime(2026, 11, 1, 21, 0, tzinfo=ROME), [], id="before_rotation"),
            pytest.param("nobody", datetime(2026, 11, 23, 21, 0, tzinfo=ROME), [], id="unknown_team"),
        ],
    )
    def test_on_call_names_the_staff_with_their_notify_uris(self, team, at, expected, tmp_path: Path) -> None:
        """on_call(team, now) is whoever the coverage has on call then, with every notify URI."""
        coverage_file = tmp_path / "coverage.yaml"
        coverage_file.write_text(COVERAGE.format(slack="https://hooks.slack.example/T1/B1/abc"))
        coverage = load_coverage(coverage_file)
        staff = on_call_from(lambda: coverage)(team, at)
        assert expected == [member.member for member in staff]
        assert all(["slack:https://hooks.slack.example/T1/B1/abc"] == member.uris for member in staff)

    @pytest.mark.parametrize(
        ("team", "at", "expected"),
        [
            pytest.param("care-it", datetime(2026, 11, 23, 21, 0, tzinfo=ROME), "reduced", id="monday_evening"),
            pytest.param("care-it", datetime(2026, 11, 23, 10, 0, tzinfo=ROME), "open", id="monday_morning"),
            pytest.param("nobody", datetime(2026, 11, 23, 21, 0, tzinfo=ROME), "", id="unknown_team"),
        ],
    )
    def test_mode_at_is_the_coverage_mode_then(self, team, at, expected) -> None:
        """mode_at(team, now), which a failed acknowledgment's page carries, is the team's mode at that instant."""
        coverage = load_coverage(EXAMPLE_COVERAGE)
        assert expected == mode_from(lambda: coverage)(team, at)

    @pytest.mark.broker  # takes the session broker (stream_settings); runs in the -m broker steps
    def test_claim_link_expires_after_the_link_ttl(self, stream_settings) -> None:
        """A claim link made at the responders' clock verifies until link_ttl has passed."""
        made_at = MONDAY_EVENING.timestamp()
        route = RouteRequest(
            route_id="route:fb:m_1", event_id="fb:m_1", team="care-it", action="route", mode="reduced",
            to=[], channel="facebook", account="acme.it.facebook", conversation="fb:PAGE_111:PSID_222",
            author_name=None, text=None, at=MONDAY_EVENING.isoformat(), next_open=None,
        )
        url = claim_links(stream_settings, lambda: made_at)(route, Notify("marta", "Marta Rossi", []))
        assert url is not None
        secret = stream_settings.ops.link_secret.get_secret_value()
        ttl = stream_settings.ops.link_ttl
        late = LinkSigner(secret, ttl=ttl, clock=lambda: MONDAY_EVENING + ttl + timedelta(seconds=1))
        on_time = LinkSigner(secret, ttl=ttl, clock=lambda: MONDAY_EVENING + ttl - timedelta(seconds=1))
        assert "marta" == on_time.verify(url.rsplit("/", 1)[1]).member
        with pytest.raises(Exception, match="expired"):
            late.verify(url.rsplit("/", 1)[1])

    @pytest.mark.broker  # takes the session broker (stream_settings); runs in the -m broker steps
    def test_no_claim_link_for_an_escalation_channel(self, stream_settings) -> None:
        """A recipient without a member id (an escalation channel) gets no link rather than an error."""
        route = RouteRequest(
            route_id="route:fb:m_1", event_id="fb:m_1", team="care-it", action="page", mode="closed",
            to=[], channel="facebook", account="acme.it.facebook", conversation="fb:PAGE_111:PSID_222",
            author_name=None, text=None, at=MONDAY_EVENING.isoformat(), next_open=None,
        )
        assert None is claim_links(stream_settings)(route, Notify("", "escalation channel", ["slack:x"]))

