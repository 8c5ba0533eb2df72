"""Messenger/Instagram comments: public replies under the comment, private replies, their limits."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from records.wire import AckRequest
from responders.base import Delivered, Permanent
from responders.fakes import FakeGraph
from responders.fakes.samples import WROTE_AT, ack_request
from tests.support.responders_messenger import CLOCK, FB_COMMENT, TOKEN, comment, sender

IG_COMMENT = "17870913679156914"


def fake_graph(
    comments: tuple[str, ...] = (FB_COMMENT, IG_COMMENT), hidden_comments: frozenset[str] = frozenset()
) -> FakeGraph:
    """The fake Graph API at the samples' now, knowing ``comments``, written 65 minutes earlier."""
    fake = FakeGraph({TOKEN}, hidden_comments=hidden_comments, clock=CLOCK)
    for comment_id in comments:
        fake.add_comment(comment_id, WROTE_AT)
    return fake


def instagram_comment(public: bool, **changes: Any) -> AckRequest:
    return comment(
        public, channel="instagram", account="acme.it.instagram", reply_to=IG_COMMENT, recipient="IGSID_9", **changes
    )


class TestMessengerCommentReplies:
    @pytest.mark.parametrize(
        ("request_", "url", "body"),
        [
            pytest.param(
                comment(True),
                f"/v25.0/{FB_COMMENT}/comments",
                {"message": ack_request().text},
                id="facebook_public_reply",
            ),
            pytest.param(
                instagram_comment(True),
                f"/v25.0/{IG_COMMENT}/replies",
                {"message": ack_request().text},
                id="instagram_public_reply",
            ),
            pytest.param(
                comment(False),
                "/v25.0/PAGE_111/messages",
                {"recipient": {"comment_id": FB_COMMENT}, "message": {"text": ack_request().text}},
                id="facebook_private_reply",
            ),
            pytest.param(
                instagram_comment(False),
                "/v25.0/me/messages",
                {"recipient": {"comment_id": IG_COMMENT}, "message": {"text": ack_request().text}},
                id="instagram_private_reply",
            ),
            pytest.param(
                comment(True, reply_to="../PAGE_111/messages?x=1"),
                "/v25.0/..%2FPAGE_111%2Fmessages%3Fx%3D1/comments",
                {"message": ack_request().text},
                id="comment_id_cannot_leave_its_node",
            ),
        ],
    )
    def test_where_and_what(self, request_: AckRequest, url: str, body: dict[str, Any]) -> None:
        """A public comment reply posts to the comment's edge; a private one goes through the Send API."""
        adapter = sender()
        assert ("http://127.0.0.1:9" + url, body) == (adapter.url(request_), adapter.body(request_))

    async def test_public_reply_is_the_new_comment_id(self, session: aiohttp.ClientSession) -> None:
        """A delivered public reply carries the id of the comment it created."""
        async with fake_graph() as fake:
            outcome = await sender(fake.url).send(comment(True), session)
        [reply] = fake.comment_replies
        assert (Delivered(reply.id), True, FB_COMMENT) == (outcome, reply.public, reply.comment_id)

    @pytest.mark.parametrize(
        ("public", "expected_requests", "delivered"),
        [
            pytest.param(True, 1, True, id="public_reply_has_no_window"),
            pytest.param(False, 0, False, id="private_reply_keeps_its_window"),
        ],
    )
    async def test_closed_window(
        self, public: bool, expected_requests: int, delivered: bool, session: aiohttp.ClientSession
    ) -> None:
        """Past the messaging window a public reply is still posted; a private reply is not attempted."""
        request = comment(public, window_closes="2026-11-23T20:00:00+01:00")
        async with fake_graph() as fake:
            outcome = await sender(fake.url).send(request, session)
        assert (expected_requests, delivered) == (len(fake.requests), isinstance(outcome, Delivered))


class TestFakeGraphComments:
    @pytest.mark.parametrize(
        "request_",
        [
            pytest.param(comment(True), id="public_reply"),
            pytest.param(comment(False), id="private_reply"),
            pytest.param(instagram_comment(True), id="instagram_public_reply"),
        ],
    )
    async def test_unknown_comment_is_refused(self, request_: AckRequest, session: aiohttp.ClientSession) -> None:
        """A reply to a comment the platform does not know is Permanent, without an operations alert."""
        async with fake_graph(comments=("ANOTHER_CMT",)) as fake:
            outcome = await sender(fake.url).send(request_, session)
        assert (Permanent, False, []) == (type(outcome), outcome.alert_operations, fake.comment_replies)

    async def test_one_private_reply_per_comment(self, session: aiohttp.ClientSession) -> None:
        """A second private reply to the same comment is refused; public replies are not limited so."""
        async with fake_graph() as fake:
            adapter = sender(fake.url)
            outcomes = [
                await adapter.send(comment(False), session),
                await adapter.send(comment(True), session),
                await adapter.send(comment(False), session),
            ]
        assert [Delivered, Delivered, Permanent] == [type(outcome) for outcome in outcomes]
        assert [False, True] == [reply.public for reply in fake.replies_to(FB_COMMENT)]

    async def test_hidden_comment_takes_only_a_private_reply(self, session: aiohttp.ClientSession) -> None:
        """Graph cannot reply in public under a hidden comment; the private reply still goes."""
        async with fake_graph(hidden_comments=frozenset({FB_COMMENT})) as fake:
            public = await sender(fake.url).send(comment(True), session)
            private = await sender(fake.url).send(comment(False), session)
        assert (Permanent, Delivered) == (type(public), type(private))

    @pytest.mark.parametrize(
        ("query", "json_body", "status"),
        [
            pytest.param({"message": "Grazie!"}, None, 200, id="message_in_query"),
            pytest.param({}, {"message": "Grazie!"}, 200, id="message_in_json_body"),
            pytest.param({}, {"message": ""}, 400, id="empty_message"),
            pytest.param({}, {"message": "x" * 2201}, 400, id="longer_than_instagram_allows"),
        ],
    )
    async def test_public_reply_body(
        self, query: dict[str, str], json_body: dict[str, str] | None, status: int, session: aiohttp.ClientSession
    ) -> None:
        """The fake takes ``message`` from the JSON body or the query, within the platform's length."""
        async with fake_graph() as fake:
            async with session.post(
                f"{fake.url}/v25.0/{IG_COMMENT}/replies",
                params=query,
                json=json_body,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as answer:
                actual = answer.status
        assert status == actual

