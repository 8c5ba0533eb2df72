"""The Faust wiring of the responders: its rules without a broker, then on the real embedded broker (Tansu)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from records.wire import AckRequest, Notify, RouteRequest
from responders.fakes.samples import ack_request
from streams.outbox import (
    ack_metric,
    decode_request,
    failed_ack_page,
    failed_ack_reason,
    outbox_dead_letter,
)
from streams.settings import Settings

MARTA = Notify(member="marta", name="Marta Rossi", uris=["mailto:marta@example.com"])


NOW = datetime(2026, 11, 23, 21, 20, tzinfo=UTC)


class TestOutboxRules:
    def test_a_record_decodes_from_bytes_a_dict_or_itself(self) -> None:
        """The acks agent reads bytes, a dict or the record; each gives the same request and no reason."""
        request = ack_request()
        forms = [request.to_json(), orjson.loads(request.to_json()), request]
        assert [(request, None)] * 3 == [decode_request(form, AckRequest) for form in forms]

    def test_an_undecodable_record_says_why(self) -> None:
        """A record that is not the outbox's type is no request, and the reason names the type and the error."""
        assert (None, "undecodable RouteRequest: JSONDecodeError") == decode_request(b"{not json", RouteRequest)

    @pytest.mark.parametrize(("source", "topic"), [("acks", "offhours.acks"), ("routes", "offhours.routes")])
    def test_dead_letter_names_the_outbox_topic(self, source, topic) -> None:
        """A delivery given up is a dead letter of its own outbox's topic, with the raw record and the reason."""
        settings = Settings(acks_topic="offhours.acks", routes_topic="offhours.routes")
        letter = outbox_dead_letter(b"raw", source, "gave up", settings, NOW.timestamp())
        assert (b"raw".decode(), "gave up", topic, "2026-11-23T21:20:00+00:00") == (
            letter.raw, letter.reason, letter.topic, letter.at)

    @pytest.mark.parametrize(("status", "counter"), [("delivered", "acks_sent"), ("dead", "acks_failed"), ("skipped", None)])
    def test_ack_metric(self, status, counter) -> None:
        """Delivered and given up move their counters; a ledger skip moves none."""
        assert counter == ack_metric(status)

    def test_failed_ack_page_goes_to_on_call_in_the_teams_mode(self) -> None:
        """The page of a failed acknowledgment: id escalation:<ack id> (as on the wire), to on call, the mode now, why."""
        asked: list[tuple[str, datetime]] = []

        def on_call(team: str, now: datetime) -> list[Notify]:
            asked.append((team, now))
            return [MARTA]

        page = failed_ack_page(ack_request(), "the platform refused it", NOW, on_call, lambda team, now: "reduced")
        assert page is not None
        expected = ("escalation:ack:fb:m_abc123", "page", ["marta"], "reduced", failed_ack_reason("the platform refused it"),
                    [("care-it", NOW)])
        assert expected == (page.route_id, page.action, [n.member for n in page.to], page.mode, page.reason, asked)
        assert page.reason == ("the customer did not get our acknowledgment because the platform refused it; "
                               "a person must answer them")

    def test_no_page_without_an_on_call_resolver_and_no_mode_without_a_mode_resolver(self) -> None:
        """Without on_call nobody is paged; without mode_at the page has no mode."""
        page = failed_ack_page(ack_request(), "x", NOW, lambda team, now: [MARTA], None)
        assert (None, "") == (failed_ack_page(ack_request(), "x", NOW, None, None), page.mode if page else None)

