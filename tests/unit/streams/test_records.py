"""Records on the topics: limits that keep every record publishable."""

from __future__ import annotations

import pytest

from records.wire import MAX_EVENT_BYTES, DeadLetter, RouteRequest
from responders.fakes.samples import route_request
from streams.outbox import unmasked


class TestDeadLetter:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(b'{"id": "broken', '{"id": "broken', id="small_kept_whole"),
            pytest.param(b"\xff\xfe garbage", "\ufffd\ufffd garbage", id="not_utf8_replaced"),
        ],
    )
    def test_raw_text(self, raw: bytes, expected: str) -> None:
        """A small input is kept as text, undecodable bytes replaced, never an exception."""
        assert expected == DeadLetter.of(raw, "invalid event: not JSON", "social.events").raw

    def test_an_oversized_input_is_cut_and_says_so(self) -> None:
        """An input over the event limit keeps its first bytes and names its full size."""
        letter = DeadLetter.of(b"x" * (MAX_EVENT_BYTES * 16), "too big", "social.events")
        assert (True, True) == (letter.raw.endswith(f"… (cut: {MAX_EVENT_BYTES * 16} bytes in all)"),
                                len(letter.to_json()) < MAX_EVENT_BYTES + 200)


SECRET = "slack:https://hooks.slack.com/services/T0001/B0002/s3cr3tT0k3n"
OTHER = "slack:https://hooks.slack.com/services/T0001/B0002/an0th3r"
MAIL = "mailto:marta@example.com"


class TestRouteSecrets:
    def test_the_wire_form_masks_webhook_urls(self) -> None:
        """A route on the topic names its Slack target without the URL's secret; e-mail addresses stay."""
        route = route_request(["slack:https://hooks.slack.com/services/T0001/B0002/s3cr3tT0k3n", "mailto:marta@example.com"])
        wire = RouteRequest.from_json(route.to_json())
        assert (["slack:https://hooks.slack.com/services/T…/B…/****", "mailto:marta@example.com"], False) == (
            wire.to[0].uris, b"s3cr3tT0k3n" in route.to_json(),
        )

    @pytest.mark.parametrize(
        ("written", "now", "expected"),
        [
            pytest.param([SECRET, MAIL], [SECRET, MAIL], [SECRET, MAIL], id="found_again_in_the_coverage"),
            pytest.param([OTHER, SECRET, MAIL], [OTHER, SECRET, MAIL], [OTHER, SECRET, MAIL],
                         id="same_mask_told_apart_by_position"),
            pytest.param([SECRET, MAIL], [MAIL, SECRET], [SECRET, MAIL], id="moved_but_unique"),
            pytest.param([SECRET, MAIL], [MAIL, OTHER, SECRET], [MAIL], id="moved_and_ambiguous_is_dropped"),
            pytest.param([SECRET, MAIL], [MAIL], [MAIL], id="gone_from_the_coverage_is_dropped"),
        ],
    )
    def test_the_responders_find_the_secret_again(self, written: list[str], now: list[str], expected: list[str]) -> None:
        """The routes agent delivers to the member's own URL in the coverage that the masked one stands for."""
        wire = RouteRequest.from_json(route_request(written).to_json())
        assert expected == unmasked(wire, lambda team, member: now).to[0].uris
