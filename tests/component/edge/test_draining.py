"""The webhooks during a stop (issue 21): 503 with Retry-After while draining, nothing produced."""

from __future__ import annotations

import hashlib
import hmac

import orjson
from aiohttp.test_utils import TestClient, TestServer

from edge.app import DRAINING_RETRY_AFTER, build_webhooks
from edge.config import EdgeSettings
from edge.sink import MemoryEventSink

SECRET = "draining-generic-secret"


def body() -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps({"id": "fb:m_drain1", "account": "acme.it.facebook", "channel": "facebook", "kind": "dm",
                        "conversation": "fb:PAGE_111:PSID_1", "author": {"id": "PSID_1"}, "text": "ciao",
                        "at": "2026-11-22T21:14:05Z"})
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Offhours-Signature": f"sha256={digest}", "Content-Type": "application/json"}


async def test_a_webhook_during_a_stop_is_refused_with_retry_after_and_accepted_before() -> None:
    sink = MemoryEventSink()
    stopping = {"now": False}
    app = build_webhooks(EdgeSettings(generic_secret=SECRET), sink, draining=lambda: stopping["now"])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        raw, headers = body()
        answer = await client.post("/webhooks/generic", data=raw, headers=headers)
        assert 200 == answer.status
        stopping["now"] = True
        answer = await client.post("/webhooks/generic", data=raw, headers=headers)
        assert (503, str(DRAINING_RETRY_AFTER)) == (answer.status, answer.headers["Retry-After"])
        assert "stopping" in (await answer.json())["error"]
        answer = await client.get("/webhooks/meta", params={"hub.mode": "subscribe"})
        assert 503 == answer.status
    assert ["fb:m_drain1"] == [event.id for event in sink.events]
