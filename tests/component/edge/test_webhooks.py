"""The webhook app end to end over real HTTP, with an in-memory sink."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr, ValidationError

from edge import signatures
from edge.app import build_webhooks
from edge.config import MIB, EdgeSettings
from edge.sink import MemoryEventSink
from edge.webhooks import INGEST

META_SECRET = "test_app_secret_0123456789abcdef"


X_SECRET = "test_consumer_secret"


TG_SECRET = "tg_secret-1_0123456789"


GENERIC_SECRET = "generic-secret-0123456789"


VERIFY_TOKEN = "verify-me-0123456789"


SETTINGS = EdgeSettings(
    meta_app_secret=META_SECRET,
    meta_verify_token=VERIFY_TOKEN,
    x_consumer_secret=X_SECRET,
    telegram_secret_token=TG_SECRET,
    telegram_bot="acme_help_bot",
    generic_secret=GENERIC_SECRET,
    max_body_bytes=4096,
    accounts={"PAGE_111": "acme.it.facebook", "PNID_5": "acme.it.whatsapp", "900": "acme_it_x",
              "acme_help_bot": "acme.it.telegram"},
)


NOW = datetime(2026, 11, 23, 21, 14, 5, tzinfo=UTC)


MESSENGER = orjson.dumps({"object": "page", "entry": [{"id": "PAGE_111", "time": 1717000000123, "messaging": [
    {"sender": {"id": "PSID_222"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1717000000000,
     "message": {"mid": "m_abc123", "text": "Where is my order?"}}]}]})


WHATSAPP = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA_1", "changes": [
    {"field": "messages", "value": {"messaging_product": "whatsapp",
     "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID_5"},
     "contacts": [{"profile": {"name": "Sam Lee"}, "wa_id": "447700900123"}],
     "messages": [{"from": "447700900123", "id": "wamid.TEST1", "timestamp": "1717000200",
                   "type": "text", "text": {"body": "Hi, refund please"}}]}}]}]})


X_DM = orjson.dumps({"for_user_id": "900", "direct_message_events": [{"type": "message_create",
    "id": "1790000000000000001", "created_timestamp": "1717000400000", "message_create": {
    "target": {"recipient_id": "900"}, "sender_id": "777", "message_data": {"text": "My card was charged twice"}}}]})


TELEGRAM = orjson.dumps({"update_id": 500001, "message": {"message_id": 42, "date": 1717000500,
    "from": {"id": 123456, "is_bot": False, "first_name": "Kim"},
    "chat": {"id": 123456, "type": "private"}, "text": "Order never arrived"}})


GENERIC = orjson.dumps([{"id": "crm:1", "account": "acme.it.facebook", "channel": "generic", "kind": "dm",
    "conversation": "crm:c1", "author": {"id": "u1"}, "at": "2026-11-23T22:14:05+01:00"}])


MakeClient = Callable[..., Awaitable[tuple[TestClient, MemoryEventSink]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient] = []

    async def make(settings: EdgeSettings = SETTINGS) -> tuple[TestClient, MemoryEventSink]:
        sink = MemoryEventSink()
        client = TestClient(TestServer(build_webhooks(settings, sink, now=lambda: NOW), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client, sink

    yield make
    for client in clients:
        await client.close()


def meta_headers(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": signatures.meta_signature(META_SECRET, body), "Content-Type": "application/json"}


def x_headers(body: bytes) -> dict[str, str]:
    return {"x-twitter-webhooks-signature": signatures.x_signature(X_SECRET, body)}


SIGNED_POSTS = [
    pytest.param("/webhooks/meta", MESSENGER, meta_headers(MESSENGER), ["fb:m_abc123"], id="messenger"),
    pytest.param("/webhooks/meta", WHATSAPP, meta_headers(WHATSAPP), ["wa:wamid.TEST1"], id="whatsapp"),
    pytest.param("/webhooks/x", X_DM, x_headers(X_DM), ["x:1790000000000000001"], id="x_dm"),
    pytest.param("/webhooks/telegram", TELEGRAM, {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, ["tg:123456:42"], id="telegram"),
    pytest.param("/webhooks/generic", GENERIC, {"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, GENERIC)},
                 ["crm:1"], id="generic"),
]


class TestSignedDelivery:
    @pytest.mark.parametrize(("path", "body", "headers", "expected_ids"), SIGNED_POSTS)
    async def test_produces_events(
        self, make_client: MakeClient, path: str, body: bytes, headers: dict[str, str], expected_ids: list[str]
    ) -> None:
        """A correctly signed delivery answers 200 and publishes its events."""
        client, sink = await make_client()
        response = await client.post(path, data=body, headers=headers)
        assert (200, {"produced": 1, "duplicates": 0, "skipped": []}, expected_ids) == (
            response.status, await response.json(), [e.id for e in sink.events]
        )

    async def test_redelivery_is_produced_once(self, make_client: MakeClient) -> None:
        """The platform's redelivery of the same message is answered 200 but not produced again."""
        client, sink = await make_client()
        first = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        second = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        assert ((200, 200), {"produced": 0, "duplicates": 1, "skipped": []}, 1) == (
            (first.status, second.status), await second.json(), len(sink.events)
        )

    async def test_failed_publish_is_retried_by_the_platform(self, make_client: MakeClient) -> None:
        """When the sink fails the answer is 503 and the platform's retry is produced."""
        client, sink = await make_client()
        sink.failure = ConnectionError("broker down")
        failed = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        sink.failure = None
        retried = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        assert ((503, 200), ["fb:m_abc123"]) == ((failed.status, retried.status), [e.id for e in sink.events])

    async def test_status_callback_is_skipped(self, make_client: MakeClient) -> None:
        """A WhatsApp status callback answers 200 with the skip and produces nothing."""
        body = orjson.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "PNID_5"},
             "statuses": [{"id": "wamid.OUT9", "status": "read"}]}}]}]})
        client, sink = await make_client()
        response = await client.post("/webhooks/meta", data=body, headers=meta_headers(body))
        expected = {"produced": 0, "duplicates": 0,
                    "skipped": [{"ref": "entry[0].changes[0].statuses[0]", "reason": "status callback (read)"}]}
        assert (200, expected, []) == (response.status, await response.json(), sink.events)

    async def test_unknown_account_is_produced_and_counted(self, make_client: MakeClient) -> None:
        """An event for an unmapped page is produced (the triage rejects it visibly) and counted."""
        body = MESSENGER.replace(b"PAGE_111", b"PAGE_999")
        client, sink = await make_client()
        await client.post("/webhooks/meta", data=body, headers=meta_headers(body))
        assert (["PAGE_999"], 1) == ([e.account for e in sink.events], client.app[INGEST].stats.unknown_accounts)


class TestRefusals:
    @pytest.mark.parametrize(
        ("path", "body", "headers", "status"),
        [
            pytest.param("/webhooks/meta", MESSENGER, {}, 401, id="meta_missing"),
            pytest.param("/webhooks/meta", MESSENGER, meta_headers(MESSENGER + b" "), 403, id="meta_forged"),
            pytest.param("/webhooks/x", X_DM, {}, 401, id="x_missing"),
            pytest.param("/webhooks/x", X_DM, {"x-twitter-webhooks-signature": signatures.x_signature("guess", X_DM)}, 403, id="x_forged"),
            pytest.param("/webhooks/telegram", TELEGRAM, {}, 401, id="telegram_missing"),
            pytest.param("/webhooks/telegram", TELEGRAM, {"X-Telegram-Bot-Api-Secret-Token": "nope"}, 403, id="telegram_mismatch"),
            pytest.param("/webhooks/generic", GENERIC, {"X-Offhours-Signature": "sha256=00"}, 403, id="generic_forged"),
        ],
    )
    async def test_bad_signature_produces_nothing(
        self, make_client: MakeClient, path: str, body: bytes, headers: dict[str, str], status: int
    ) -> None:
        """A missing signature is 401, a wrong one 403, and nothing is produced."""
        client, sink = await make_client()
        response = await client.post(path, data=body, headers=headers)
        assert (status, []) == (response.status, sink.events)

    async def test_malformed_json_is_400_with_reason(self, make_client: MakeClient) -> None:
        """A signed body that is not JSON answers 400 saying so."""
        body = b'{"object": "page", "entry": ['
        client, sink = await make_client()
        response = await client.post("/webhooks/meta", data=body, headers=meta_headers(body))
        error = (await response.json())["error"]
        assert (400, True, []) == (response.status, error.startswith("malformed JSON"), sink.events)

    @pytest.mark.parametrize("chunked", [pytest.param(False, id="content_length"), pytest.param(True, id="chunked")])
    async def test_oversized_body_is_413(self, make_client: MakeClient, chunked: bool) -> None:
        """A body beyond max_body_bytes is refused with 413, declared or streamed."""
        body = b'{"object":"page","entry":[],"pad":"' + b"x" * 5000 + b'"}'

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        client, sink = await make_client()
        response = await client.post("/webhooks/meta", data=stream() if chunked else body, headers=meta_headers(body))
        assert (413, []) == (response.status, sink.events)

    async def test_invalid_generic_event_produces_none(self, make_client: MakeClient) -> None:
        """One invalid event in a generic batch refuses the batch with the reason."""
        body = orjson.dumps([orjson.loads(GENERIC)[0], {"id": "crm:2"}])
        client, sink = await make_client()
        response = await client.post("/webhooks/generic", data=body,
                                     headers={"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, body)})
        error = (await response.json())["error"]
        assert (400, True, []) == (response.status, error.startswith("invalid events, none produced: [1] account"), sink.events)

    async def test_unconfigured_platform_is_503(self, make_client: MakeClient) -> None:
        """Without its secret a webhook refuses with 503 (the platform retries), never unverified."""
        client, sink = await make_client(EdgeSettings())
        response = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        assert (503, []) == (response.status, sink.events)

    @pytest.mark.parametrize(
        ("method", "path", "variable"),
        [
            ("POST", "/webhooks/meta", "OFFHOURS_EDGE__META_APP_SECRET"),
            ("GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=x",
             "OFFHOURS_EDGE__META_VERIFY_TOKEN"),
            ("POST", "/webhooks/x", "OFFHOURS_EDGE__X_CONSUMER_SECRET"),
            ("GET", "/webhooks/x?crc_token=abc", "OFFHOURS_EDGE__X_CONSUMER_SECRET"),
            ("POST", "/webhooks/telegram", "OFFHOURS_EDGE__TELEGRAM_SECRET_TOKEN"),
            ("POST", "/webhooks/generic", "OFFHOURS_EDGE__GENERIC_SECRET"),
        ],
    )
    async def test_unconfigured_answer_names_the_variable_to_set(
        self, make_client: MakeClient, method: str, path: str, variable: str
    ) -> None:
        """The 503 of a webhook without its secret says which variable to set (a name, no secret)."""
        client, _ = await make_client(EdgeSettings())
        response = await client.request(method, path, data=b"{}")
        name = path.split("/")[2].split("?")[0]
        assert (503, {"error": f"{name} webhooks are not configured: set {variable}"}) == (
            response.status, await response.json()
        )

    @pytest.mark.parametrize(
        ("path", "field", "headers"),
        [
            pytest.param("/webhooks/generic", "generic_secret",
                         {"X-Offhours-Signature": "sha256=" + hmac.new(b"", GENERIC, hashlib.sha256).hexdigest()},
                         id="generic"),
            pytest.param("/webhooks/meta", "meta_app_secret",
                         {"X-Hub-Signature-256": "sha256=" + hmac.new(b"", MESSENGER, hashlib.sha256).hexdigest()},
                         id="meta"),
            pytest.param("/webhooks/x", "x_consumer_secret",
                         {"x-twitter-webhooks-signature":
                          "sha256=" + base64.b64encode(hmac.new(b"", X_DM, hashlib.sha256).digest()).decode()},
                         id="x"),
        ],
    )
    async def test_empty_secret_accepts_nothing(
        self, make_client: MakeClient, path: str, field: str, headers: dict[str, str]
    ) -> None:
        """Settings forced past validation with an empty secret still refuse a body signed with the empty key."""
        client, sink = await make_client(SETTINGS.model_copy(update={field: SecretStr("")}))
        body = {"/webhooks/generic": GENERIC, "/webhooks/meta": MESSENGER, "/webhooks/x": X_DM}[path]
        response = await client.post(path, data=body, headers=headers)
        assert (403, []) == (response.status, sink.events)

    async def test_errors_never_show_secrets(self, make_client: MakeClient) -> None:
        """Neither a refusal nor the settings' repr contain a configured secret."""
        client, _ = await make_client()
        response = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(b"other"))
        shown = await response.text() + repr(SETTINGS)
        assert [] == [secret for secret in (META_SECRET, X_SECRET, TG_SECRET, GENERIC_SECRET) if secret in shown]


class TestHandshakes:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            pytest.param({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
                         (200, "1158201444"), id="echoes_challenge"),
            pytest.param({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, (403, None), id="wrong_token"),
            pytest.param({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}, (403, None), id="wrong_mode"),
        ],
    )
    async def test_meta(self, make_client: MakeClient, query: dict[str, str], expected: tuple[int, str | None]) -> None:
        """Meta's GET echoes hub.challenge as the raw body only for the right verify token."""
        client, _ = await make_client()
        response = await client.get("/webhooks/meta", params=query)
        body = await response.text() if response.status == 200 else None
        assert expected == (response.status, body)

    async def test_x_crc(self, make_client: MakeClient) -> None:
        """X's CRC GET answers the documented response_token."""
        client, _ = await make_client()
        response = await client.get("/webhooks/x", params={"crc_token": "crc-token-123"})
        assert (200, {"response_token": "sha256=WTP6ckqLOLFsB+woMqoUFnbdaUQZslRlj+Df7hg+aVo="}) == (
            response.status, await response.json()
        )

    @pytest.mark.parametrize(
        "token",
        [
            pytest.param(X_DM.decode(), id="x_webhook_body"),
            pytest.param('{"for_user_id":"42"}', id="small_json_object"),
            pytest.param("crc token", id="space"),
            pytest.param('"crc-token-123"', id="quotes"),
            pytest.param("crc-token-123\n", id="newline"),
            pytest.param("a" * 129, id="too_long"),
            pytest.param("\u00e9t\u00e9", id="not_ascii"),
        ],
    )
    async def test_x_crc_answers_only_tokens_of_x_shape(self, make_client: MakeClient, token: str) -> None:
        """A crc_token that is not X's short base64 shape (a webhook body, above all) is 400 with no signature."""
        client, _ = await make_client()
        response = await client.get("/webhooks/x", params={"crc_token": token})
        answer = await response.json()
        assert (400, False, True) == (
            response.status, "response_token" in answer, answer.get("error", "").startswith("crc_token")
        )

    async def test_x_crc_is_no_signing_oracle(self, make_client: MakeClient) -> None:
        """The CRC answer for a webhook body is never the signature the POST route accepts for that body."""
        client, sink = await make_client()
        crc = await client.get("/webhooks/x", params={"crc_token": X_DM.decode()})
        token = (await crc.json()).get("response_token", "")
        forged = await client.post("/webhooks/x", data=X_DM, headers={"x-twitter-webhooks-signature": token})
        assert (400, 401, []) == (crc.status, forged.status, sink.events)


class RecordingSink(MemoryEventSink):
    """A memory sink with a lifecycle, recording when it was started and stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.lifecycle: list[str] = []

    async def start(self) -> None:
        await super().start()
        self.lifecycle.append("start")

    async def stop(self) -> None:
        await super().stop()
        self.lifecycle.append("stop")


class TestFactory:
    async def test_mounted_as_subapp_with_managed_sink(self) -> None:
        """Mounted under /webhooks with prefix "", the app serves there and starts and stops its sink."""
        sink = RecordingSink()
        root = web.Application()
        root.add_subapp("/webhooks", build_webhooks(SETTINGS, sink, prefix=""))
        async with TestClient(TestServer(root, host="127.0.0.1")) as client:
            response = await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
            status_while_running = (response.status, list(sink.lifecycle))
        assert ((200, ["start"]), ["start", "stop"], ["fb:m_abc123"]) == (
            status_while_running, sink.lifecycle, [e.id for e in sink.events]
        )

    async def test_apps_do_not_share_dedupe(self, make_client: MakeClient) -> None:
        """Two apps in one process keep separate memories: no module-level state."""
        first, first_sink = await make_client()
        second, second_sink = await make_client()
        for client in (first, second):
            await client.post("/webhooks/meta", data=MESSENGER, headers=meta_headers(MESSENGER))
        assert (1, 1) == (len(first_sink.events), len(second_sink.events))


def messenger_batch(*messages: dict[str, Any]) -> bytes:
    """A documented Messenger body whose entry carries one messaging item per message."""
    return orjson.dumps({"object": "page", "entry": [{"id": "PAGE_111", "time": 1717000000123, "messaging": [
        {"sender": {"id": "PSID_222"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1717000000000, "message": message}
        for message in messages]}]})


def generic_event(**changes: Any) -> dict[str, Any]:
    return {**orjson.loads(GENERIC)[0], **changes}


class TestLimits:
    @pytest.mark.parametrize(
        ("settings_changes", "body", "produced", "skipped"),
        [
            pytest.param({}, messenger_batch({"mid": "m_long", "text": "x" * 10_001}, {"mid": "m_ok", "text": "x" * 10_000}),
                         ["fb:m_ok"], [("entry[0].messaging[0]", "text of 10001 characters")], id="text_over_10000"),
            pytest.param({"max_text_chars": 2000}, messenger_batch({"mid": "m_long", "text": "é" * 2001},
                                                                   {"mid": "m_ok", "text": "é" * 2000}),
                         ["fb:m_ok"], [("entry[0].messaging[0]", "text of 2001 characters")], id="text_over_setting"),
            pytest.param({}, messenger_batch({"mid": "m_" + "9" * 70_000, "text": "hi"}, {"mid": "m_ok", "text": "hi"}),
                         ["fb:m_ok"], [("entry[0].messaging[0]", "event of ")], id="event_over_64_kib"),
            pytest.param({"max_event_bytes": 2048}, messenger_batch({"mid": "m_big", "text": "x" * 2000},
                                                                    {"mid": "m_ok", "text": "x" * 1000}),
                         ["fb:m_ok"], [("entry[0].messaging[0]", "event of ")], id="event_over_setting"),
        ],
    )
    async def test_item_over_a_limit_is_skipped(
        self, make_client: MakeClient, settings_changes: dict[str, Any], body: bytes, produced: list[str],
        skipped: list[tuple[str, str]],
    ) -> None:
        """An item whose text or serialized event is over the limit is skipped with the reason; the rest is produced."""
        client, sink = await make_client(SETTINGS.model_copy(update={"max_body_bytes": MIB, **settings_changes}))
        response = await client.post("/webhooks/meta", data=body, headers=meta_headers(body))
        answer = await response.json()
        reasons = [(s["ref"], s["reason"]) for s in answer["skipped"]]
        assert (200, produced, [ref for ref, _ in skipped], True) == (
            response.status, [e.id for e in sink.events], [ref for ref, _ in reasons],
            all(part in reason for (_, part), (_, reason) in zip(skipped, reasons, strict=True)),
        )

    @pytest.mark.parametrize(
        "event",
        [
            pytest.param(generic_event(notes="x" * 1_000_000), id="one_mb_extra_field"),
            pytest.param(generic_event(author={"id": "u1", "name": "n" * 900_000}), id="one_mb_author_name"),
            pytest.param(generic_event(text="x" * 10_001), id="text_over_10000"),
        ],
    )
    async def test_generic_event_over_a_limit_is_refused(self, make_client: MakeClient, event: dict[str, Any]) -> None:
        """A ~1 MB generic event (the edge accepted it and the worker choked) is refused with 400, none produced."""
        body = orjson.dumps([generic_event(id="crm:ok"), event])
        client, sink = await make_client(SETTINGS.model_copy(update={"max_body_bytes": 2 * MIB}))
        response = await client.post("/webhooks/generic", data=body,
                                     headers={"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, body)})
        error = (await response.json())["error"]
        assert (400, True, []) == (response.status, "[1]" in error and "limit" in error, sink.events)

    @pytest.mark.parametrize(
        ("changes", "variable"),
        [
            pytest.param({"max_text_chars": 10_001}, "max_text_chars", id="text_above_the_workers"),
            pytest.param({"max_event_bytes": 64 * 1024 + 1}, "max_event_bytes", id="event_above_the_workers"),
            pytest.param({"max_text_chars": 0}, "max_text_chars", id="text_zero"),
        ],
    )
    def test_limits_cannot_exceed_what_the_worker_takes(self, changes: dict[str, Any], variable: str) -> None:
        """The edge's limits may be lowered, never raised above what the triage worker accepts."""
        with pytest.raises(ValidationError) as caught:
            EdgeSettings(**changes)
        assert [(variable,)] == [tuple(e["loc"]) for e in caught.value.errors()]

