"""Property: every correctly signed body gets 200 (bad items skipped) or 400, never a 5xx.

Hypothesis mutates the documented bodies of each webhook (see ``webhook_mutations``)
and posts them, signed, to a real aiohttp server; the sink serializes every event as
the Kafka sink does, so an event that could not be written to the topic shows up as
the 503 it would cause.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from edge.app import build_webhooks
from edge.config import EdgeSettings
from edge.webhooks import INGEST
from tests.support.webhook_mutations import (
    GENERIC,
    META,
    TELEGRAM,
    WEBHOOKS,
    WHATSAPP,
    KafkaLikeSink,
    X,
    edge_settings_fields,
    signed_body,
)

NOW = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC)
MAX_BODY_BYTES = 2 * 1024 * 1024
SETTINGS = EdgeSettings(**edge_settings_fields(), max_body_bytes=MAX_BODY_BYTES)
EXAMPLES = 300


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_webhooks(SETTINGS, KafkaLikeSink(), now=lambda: NOW),
                                     host="127.0.0.1")) as test_client:
        yield test_client


def changed(document: Any, path: str, value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` (``entry.0.messaging.0.timestamp``) replaced."""
    copy = json.loads(json.dumps(document))
    *parents, last = path.split(".")
    node = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return copy


def body_of(document: Any) -> bytes:
    # json (not orjson): integers beyond 64 bits are written as senders write them.
    return json.dumps(document).encode()


MESSENGER, MESSENGER_ECHO, INSTAGRAM_DM, FEED_COMMENT, INSTAGRAM_COMMENT, MESSENGER_BATCH = META
WA_TEXT = WHATSAPP[0]
X_DM, X_MENTION = X[0], X[1]
TG_PRIVATE = TELEGRAM[0]
GENERIC_ONE = GENERIC[0]

ODD_VALUES = [
    # (webhook, body, status, produced ids, skipped refs)
    pytest.param("meta", {"object": ["page"], "entry": []}, 400, [], [], id="meta_object_is_a_list"),
    pytest.param("meta", {"object": {"page": 1}, "entry": []}, 400, [], [], id="meta_object_is_an_object"),
    pytest.param("meta", changed(MESSENGER_BATCH, "entry.1.messaging.0.timestamp", 253402300800000), 200,
                 [], ["entry[0].messaging[0]", "entry[1].messaging[0]"], id="messenger_after_year_9999"),
    pytest.param("meta", changed(MESSENGER_BATCH, "entry.1.messaging.0.timestamp", -62135596800000), 200,
                 [], ["entry[0].messaging[0]", "entry[1].messaging[0]"], id="messenger_year_1"),
    pytest.param("meta", changed(MESSENGER_BATCH, "entry.0.messaging.0.timestamp", 10**20), 200,
                 ["fb:m_abc124"], ["entry[0].messaging[0]"], id="one_bad_item_keeps_the_batch"),
    pytest.param("meta", changed(MESSENGER, "entry.0.time", -(2**63) - 1), 200, ["fb:m_abc123"], [],
                 id="entry_time_out_of_range_is_only_a_fallback"),
    pytest.param("meta", changed(FEED_COMMENT, "entry.0.changes.0.value.created_time", "9999-12-31T23:59:59-14:00"),
                 200, [], ["entry[0].changes[0]"], id="comment_iso_time_beyond_9999"),
    pytest.param("meta", changed(FEED_COMMENT, "entry.0.changes.0.value.created_time", 8.49e19), 200, [],
                 ["entry[0].changes[0]"], id="comment_float_time_out_of_range"),
    pytest.param("meta", changed(MESSENGER, "entry.0.messaging.0.message.reply_to", {"mid": {"x": 1}}), 200,
                 ["fb:m_abc123"], [], id="reply_reference_not_an_id_is_dropped"),
    pytest.param("whatsapp", changed(WA_TEXT, "entry.0.changes.0.value.messages.0.timestamp", "9" * 20), 200,
                 [], ["entry[0].changes[0].messages[0]"], id="whatsapp_timestamp_huge"),
    pytest.param("whatsapp", changed(WA_TEXT, "entry.0.changes.0.value.messages.0.timestamp", 1717000200.5), 200,
                 ["wa:wamid.TEST1"], [], id="whatsapp_float_timestamp"),
    pytest.param("whatsapp", changed(WA_TEXT, "entry.0.changes.0.value.contacts.0", "447700900123"), 200,
                 ["wa:wamid.TEST1"], [], id="whatsapp_contact_not_an_object"),
    pytest.param("x", changed(X_DM, "users.777.followers_count", 2**64), 200, ["x:1790000000000000001"], [],
                 id="x_followers_beyond_64_bits"),
    pytest.param("x", changed(X_DM, "users.777.followers_count", -5), 200, ["x:1790000000000000001"], [],
                 id="x_negative_followers"),
    pytest.param("x", changed(X_DM, "direct_message_events.0.created_timestamp", str(2**70)), 200, [],
                 ["direct_message_events[0]"], id="x_dm_time_huge"),
    pytest.param("x", changed(X_MENTION, "tweet_create_events.0.created_at", "Fri Dec 31 23:59:59 -1400 9999"), 200,
                 [], ["tweet_create_events[0]"], id="x_created_at_beyond_9999"),
    pytest.param("x", changed(X_MENTION, "tweet_create_events.0.created_at", "Mon Jan 01 00:00:00 +1400 0001"), 200,
                 [], ["tweet_create_events[0]"], id="x_created_at_before_year_1"),
    pytest.param("telegram", changed(TG_PRIVATE, "message.date", 10**20), 200, [], ["update 500001"],
                 id="telegram_date_huge"),
    pytest.param("telegram", changed(TG_PRIVATE, "message.from.first_name", {"nested": ["x"]}), 200,
                 ["tg:123456:42"], [], id="telegram_name_not_text"),
    pytest.param("generic", changed(GENERIC_ONE, "at", "0001-01-01T00:00:00+14:00"), 400, [], [],
                 id="generic_year_1"),
    pytest.param("generic", changed(GENERIC_ONE, "at", "9999-12-31T23:59:59-14:00"), 400, [], [],
                 id="generic_year_9999"),
    pytest.param("generic", changed(GENERIC_ONE, "author.followers", 2**64), 400, [], [],
                 id="generic_followers_beyond_64_bits"),
    pytest.param("generic", {**GENERIC_ONE, "crm": json.loads("[" * 300 + "]" * 300)}, 400, [], [],
                 id="generic_extra_nested_300_deep"),
]


class TestOddValues:
    @pytest.mark.parametrize(("webhook", "document", "status", "produced", "skipped"), ODD_VALUES)
    async def test_answer(
        self, client: TestClient, webhook: str, document: Any, status: int, produced: list[str], skipped: list[str]
    ) -> None:
        """A signed documented body with one odd value: the item is skipped (200) or the body refused (400), no 5xx."""
        body = body_of(document)
        response = await client.post(WEBHOOKS[webhook].path, data=body, headers=WEBHOOKS[webhook].sign(body))
        answer = await response.json()
        refs = [s["ref"] for s in answer.get("skipped", [])]
        ids = [e.id for e in client.app[INGEST].sink.events]
        assert (status, produced, skipped) == (response.status, ids, refs)


class TestSignedBodiesNeverGet5xx:
    @pytest.mark.parametrize("webhook", list(WEBHOOKS))
    # No shrinking: the failure message shows the body, and shrinking big JSON takes minutes.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(rng=st.randoms(use_true_random=False))
    async def test_status_is_200_or_400(self, client: TestClient, webhook: str, rng: random.Random) -> None:
        """A signed, mutated documented body is answered 200 (with skips) or 400, never 5xx."""
        body, headers = signed_body(rng, WEBHOOKS[webhook])
        assume(len(body) <= MAX_BODY_BYTES)
        response = await client.post(WEBHOOKS[webhook].path, data=body, headers=headers)
        answer = await response.text()
        assert response.status in (200, 400), f"{response.status} {answer[:500]} for body {body[:2000]!r}"
