"""Signed webhook bodies for fuzzing: documented shapes, mutated.

Shared by the property test (``test_webhook_fuzz.py``, Hypothesis drives the random
choices through ``st.randoms()``) and ``bench/fuzz_webhooks.py`` (a plain
:class:`random.Random` for a number of seconds). Every body is signed the way its
platform signs it, so the edge gets past the signature check and has to cope with the
content: wrong types, huge and negative numbers, extreme dates, missing fields, deep
nesting, unicode, lists where objects belong and the reverse.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge import signatures
from edge.sink import MemoryEventSink
from records.wire import SocialEvent, parse_event

META_SECRET = "fuzz-meta-app-secret-0123456789ab"
VERIFY_TOKEN = "fuzz-verify-token-0123"
X_SECRET = "fuzz-x-consumer-secret-0123456789abcdefghijklmnopq"
TELEGRAM_SECRET = "fuzz-telegram-secret_0123"
GENERIC_SECRET = "fuzz-generic-secret-0123"
ACCOUNTS = {"PAGE_111": "acme.it.facebook", "IG_222": "acme.it.instagram", "PNID_5": "acme.it.whatsapp",
            "900": "acme_it_x", "acme_help_bot": "acme.it.telegram"}


def _messenger(**message: Any) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "PAGE_111", "time": 1717000000123, "messaging": [
        {"sender": {"id": "PSID_222"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1717000000000,
         "message": {"mid": "m_abc123", "text": "Where is my order?", **message}}]}]}


META = [
    _messenger(),
    _messenger(is_echo=True, app_id=1234, reply_to={"mid": "m_prev"}),
    {"object": "instagram", "entry": [{"id": "IG_222", "time": 1717000000123, "messaging": [
        {"sender": {"id": "IGSID_1"}, "recipient": {"id": "IG_222"}, "timestamp": 1717000000000,
         "message": {"mid": "ig_m_1", "text": "Ciao"}}]}]},
    {"object": "page", "entry": [{"id": "PAGE_111", "time": 1717000100, "changes": [
        {"field": "feed", "value": {"item": "comment", "verb": "add", "comment_id": "POST_9_CMT_7",
         "post_id": "PAGE_111_POST_9", "parent_id": "PAGE_111_POST_9",
         "from": {"id": "USER_333", "name": "Ana Lopez"}, "message": "Broken on arrival",
         "created_time": 1717000099}}]}]},
    {"object": "instagram", "entry": [{"id": "IG_222", "time": 1717000100, "changes": [
        {"field": "comments", "value": {"id": "17900001", "text": "Where is it?",
         "from": {"id": "IGSID_9", "username": "cust_9"},
         "media": {"id": "1790000", "media_product_type": "FEED"}, "parent_id": "17899999"}}]}]},
    {"object": "page", "entry": [
        {"id": "PAGE_111", "time": 1717000000123, "messaging": [
            {"sender": {"id": "PSID_222"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1717000000000,
             "delivery": {"mids": ["m_1"], "watermark": 1717000000000}}]},
        {"id": "PAGE_111", "time": 1717000000200, "messaging": [
            {"sender": {"id": "PSID_223"}, "recipient": {"id": "PAGE_111"}, "timestamp": 1717000000100,
             "message": {"mid": "m_abc124", "text": "Second in the batch"}}]}]},
]

WHATSAPP = [
    {"object": "whatsapp_business_account", "entry": [{"id": "WABA_1", "changes": [{"field": "messages",
     "value": {"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID_5"},
               "contacts": [{"profile": {"name": "Sam Lee"}, "wa_id": "447700900123"}],
               "messages": [{"from": "447700900123", "id": "wamid.TEST1", "timestamp": "1717000200",
                             "type": "text", "text": {"body": "Hi, refund please"},
                             "context": {"id": "wamid.PREV"}}]}}]}]},
    {"object": "whatsapp_business_account", "entry": [{"id": "WABA_1", "changes": [{"field": "messages",
     "value": {"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID_5"},
               "statuses": [{"id": "wamid.OUT9", "status": "failed", "timestamp": "1717000300",
                             "recipient_id": "447700900123", "errors": [{"code": 131047,
                             "title": "Re-engagement message"}]}]}}]}]},
    {"object": "whatsapp_business_account", "entry": [{"id": "WABA_1", "changes": [{"field": "messages",
     "value": {"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PNID_5"},
               "messages": [{"from": "447700900124", "id": "wamid.TEST2", "timestamp": "1717000201",
                             "type": "image", "image": {"id": "img", "caption": "the dent"}},
                            {"from": "447700900125", "id": "wamid.TEST3", "timestamp": "1717000202",
                             "type": "interactive",
                             "interactive": {"type": "button_reply", "button_reply": {"id": "b", "title": "Refund"}}}]}}]}]},
]

X = [
    {"for_user_id": "900", "direct_message_events": [{"type": "message_create", "id": "1790000000000000001",
     "created_timestamp": "1717000400000", "message_create": {"target": {"recipient_id": "900"},
     "sender_id": "777", "message_data": {"text": "My card was charged twice"}}}],
     "users": {"777": {"id": "777", "screen_name": "cust_777", "name": "Cust", "followers_count": 12}}},
    {"for_user_id": "900", "user_has_blocked": False, "tweet_create_events": [{"id_str": "1790000000000000002",
     "text": "@acme_help app crashes on login", "created_at": "Wed Jun 05 10:00:00 +0000 2024",
     "user": {"id_str": "777", "screen_name": "cust_777", "followers_count": 3400},
     "in_reply_to_status_id_str": None, "truncated": True,
     "extended_tweet": {"full_text": "@acme_help app crashes on login, every time"}}]},
    {"for_user_id": "900", "tweet_create_events": [{"id_str": "1790000000000000003",
     "text": "@cust_777 sorry, DM us", "created_at": "Wed Jun 05 10:05:00 +0000 2024",
     "user": {"id_str": "900", "screen_name": "acme_help"}, "in_reply_to_user_id_str": "777",
     "in_reply_to_status_id_str": "1790000000000000002"}],
     "favorite_events": [{"id": "f1", "created_at": "Wed Jun 05 10:00:00 +0000 2024"}]},
]

TELEGRAM = [
    {"update_id": 500001, "message": {"message_id": 42, "date": 1717000500,
     "from": {"id": 123456, "is_bot": False, "first_name": "Kim", "username": "kim_t"},
     "chat": {"id": 123456, "type": "private", "first_name": "Kim"}, "text": "Order never arrived"}},
    {"update_id": 500002, "message": {"message_id": 43, "date": 1717000501,
     "from": {"id": 123457, "is_bot": False, "first_name": "Lee", "last_name": "Ray"},
     "chat": {"id": -1001234567890, "type": "supergroup", "title": "Acme fans"},
     "text": "@acme_help_bot it broke", "reply_to_message": {"message_id": 40}}},
    {"update_id": 500003, "edited_message": {"message_id": 42, "date": 1717000500, "edit_date": 1717000600,
     "chat": {"id": 123456, "type": "private"}, "text": "Order never arrived!"}},
]

GENERIC = [
    {"id": "crm:1", "account": "acme.it.facebook", "channel": "generic", "kind": "dm",
     "conversation": "crm:c1", "author": {"id": "u1", "name": "Ana", "followers": 10},
     "text": "Hello", "lang": "it", "at": "2026-11-23T22:14:05+01:00", "in_reply_to": None},
    [{"id": "crm:2", "account": "acme.it.facebook", "channel": "generic", "kind": "comment",
      "conversation": "crm:c2", "author": {"id": "u2"}, "at": "2026-11-23T21:14:05Z"},
     {"id": "crm:3", "account": "acme.it.facebook", "channel": "generic", "kind": "agent_reply",
      "conversation": "crm:c2", "author": {"id": "staff"}, "at": "2026-11-23T21:15:05Z", "in_reply_to": "crm:2"}],
]


@dataclass(frozen=True)
class Webhook:
    """One webhook route: its documented sample bodies and how its platform signs a body."""

    name: str
    path: str
    samples: list[Any]
    sign: Callable[[bytes], dict[str, str]]


WEBHOOKS = {
    "meta": Webhook("meta", "/webhooks/meta", META,
                    lambda body: {"X-Hub-Signature-256": signatures.meta_signature(META_SECRET, body)}),
    "whatsapp": Webhook("whatsapp", "/webhooks/meta", WHATSAPP,
                        lambda body: {"X-Hub-Signature-256": signatures.meta_signature(META_SECRET, body)}),
    "x": Webhook("x", "/webhooks/x", X,
                 lambda body: {"x-twitter-webhooks-signature": signatures.x_signature(X_SECRET, body)}),
    "telegram": Webhook("telegram", "/webhooks/telegram", TELEGRAM,
                        lambda body: {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}),
    "generic": Webhook("generic", "/webhooks/generic", GENERIC,
                       lambda body: {"X-Offhours-Signature": signatures.generic_signature(GENERIC_SECRET, body)}),
}


def edge_settings_fields() -> dict[str, Any]:
    """The EdgeSettings keyword arguments matching the secrets the bodies are signed with."""
    return {
        "meta_app_secret": META_SECRET, "meta_verify_token": VERIFY_TOKEN, "x_consumer_secret": X_SECRET,
        "telegram_secret_token": TELEGRAM_SECRET, "telegram_bot": "acme_help_bot", "generic_secret": GENERIC_SECRET,
        "accounts": ACCOUNTS,
        "rate_per_second": 0,  # one client posting as fast as it can: the rate limit is not under test
    }


# -- weird values ------------------------------------------------------------------------

EXTREME_NUMBERS: list[Any] = [
    0, -1, 1, -0.0, 0.5, 1.5, -1.5, 1e308, -1e308, 5e-324, 1717000000.5, 1717000000000.0,
    2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30, -(10**30),
    253402300799, 253402300800, 253402300799999, 253402300800000,  # 9999-12-31 23:59:59 (s, ms) and after
    -62135596800, -62135596801, -62135596800000,  # 0001-01-01 (s, ms) and before
    10**11, 10**12, 10**15, 10**18, 10**20, -(10**15),
]
EXTREME_TEXTS: list[str] = [
    "", " ", "0", "-1", "+1", "1.5", "1e3", "1_000", "0x10", "nan", "inf", "-inf", "null", "true",
    "9" * 30, "9" * 5000, "-" + "9" * 20, "١٧١٧٠٠٠٢٠٠", "１７１７０００２００",
    "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59", "1969-12-31T23:59:59Z", "2024-02-30T10:00:00Z", "2024-06-05", "10:00",
    "Wed Jun 05 10:00:00 +0000 9999", "Mon Jan 01 00:00:00 +1400 0001", "Fri Dec 31 23:59:59 -1400 9999",
    "Wed Jun 05 25:61:61 +0000 2024", "Wed Foo 05 10:00:00 +0000 2024", "Wed Jun 05 10:00:00 +9999 2024",
    "Wed Jun 05 10:00:00 +0000", "Wed Jun 05 10:00:00 +0000 0", "Wed Jun 05 10:00:00 +0000 2024 extra",
    "\u0000", "\u202e\u202d", "\ufeff", "😀" * 3, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "é" * 3, "\\", "\"", "'", "<script>",
    "a" * 10_001, "ü" * 20_000, "x" * 200_000,
]


def weird_scalar(rng: random.Random) -> Any:
    """A value a sloppy or hostile sender could put anywhere: extremes, wrong types, odd text."""
    pick = rng.randrange(10)
    if pick == 0:
        return rng.choice(EXTREME_NUMBERS)
    if pick == 1:
        return rng.choice(EXTREME_TEXTS)
    if pick == 2:
        return rng.choice([None, True, False, [], {}, [None], {"": None}])
    if pick == 3:
        return rng.randint(-(2**70), 2**70)
    if pick == 4:
        return rng.uniform(-1e20, 1e20)
    if pick == 5:
        return str(rng.randint(-(10**25), 10**25))
    if pick == 6:
        return _random_text(rng)
    if pick == 7:
        return rng.choice(EXTREME_NUMBERS) * rng.choice([1, -1, 1000])
    if pick == 8:
        return "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 25)))
    return rng.choice(EXTREME_TEXTS) + _random_text(rng)


def _random_text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 5, 30, 300])
    alphabet = rng.choice([string.printable, "abc", "\u00e9\u4e2d\U0001f600\u202e\u0000\ud7ff\ue000"])
    return "".join(rng.choice(alphabet) for _ in range(size))


def clone(document: Any) -> Any:
    """A deep copy of JSON-like data, without recursion (the documents may be nested hundreds deep)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, document)]
    while stack:
        parent, key, value = stack.pop()
        if isinstance(value, dict):
            copied: Any = {}
            stack.extend((copied, k, v) for k, v in value.items())
        elif isinstance(value, list):
            copied = [None] * len(value)
            stack.extend((copied, i, v) for i, v in enumerate(value))
        else:
            copied = value
        parent[key] = copied
    return root[0]


def weird_value(rng: random.Random, original: Any) -> Any:
    """A replacement for ``original``: a weird scalar, or the original in a wrong container or nesting."""
    pick = rng.randrange(8)
    if pick <= 3:
        return weird_scalar(rng)
    if pick == 4:
        return [clone(original)] * rng.choice([1, 2, 50])
    if pick == 5:
        return {"value": clone(original), rng.choice(["id", "text", "", "0"]): weird_scalar(rng)}
    if pick == 6:
        return nested(rng, rng.choice([2, 10, 100, 300]))
    if isinstance(original, str):
        return original * rng.choice([2, 100, 3000])
    return str(original)


def nested(rng: random.Random, depth: int) -> Any:
    """``depth`` levels of lists and objects around a weird scalar (built without recursion)."""
    value: Any = weird_scalar(rng)
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


# -- mutation --------------------------------------------------------------------------


HOT_KEYS = frozenset({
    "object", "entry", "time", "timestamp", "created_time", "created_at", "created_timestamp", "date",
    "followers_count", "followers", "at", "id", "id_str", "mid", "message", "text", "from", "chat", "users",
    "user", "messages", "metadata", "value", "for_user_id", "sender_id",
})
"""Keys whose values the edge converts (times, counts, ids, containers): mutated more often."""


def _slots(document: Any, limit: int = 5000) -> list[tuple[Any, Any]]:
    """(container, key) of every value in ``document``, breadth first, at most ``limit``."""
    slots: list[tuple[Any, Any]] = []
    queue = [document]
    while queue and len(slots) < limit:
        node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            slots.append((node, key))
            if isinstance(value, dict | list):
                queue.append(value)
    return slots


def mutate(rng: random.Random, sample: Any, *, max_mutations: int = 4) -> Any:
    """A mutated deep copy of ``sample`` (occasionally the whole body replaced)."""
    if rng.random() < 0.03:
        return weird_value(rng, sample)
    document = clone(sample)
    for _ in range(rng.randint(1, max_mutations)):
        slots = _slots(document)
        if not slots:
            return weird_value(rng, document)
        hot = [slot for slot in slots if slot[1] in HOT_KEYS]
        container, key = rng.choice(hot if hot and rng.random() < 0.4 else slots)
        action = rng.randrange(6)
        if action <= 2:
            container[key] = weird_value(rng, container[key])
        elif action == 3 and isinstance(container, dict):
            del container[key]
        elif action == 4 and isinstance(container, dict):
            container[rng.choice(["extra", "message", "text", "id", "from", "chat", "value"])] = weird_scalar(rng)
        elif isinstance(container, list):
            container.extend(clone(container[key]) for _ in range(rng.choice([1, 5, 100])))
        else:
            container[key] = weird_value(rng, container[key])
    return document


def encode(rng: random.Random, document: Any) -> bytes:
    """``document`` as JSON bytes: compact or spaced, escaped or raw unicode (lone surrogates kept)."""
    text = json.dumps(document, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
    return text.encode("utf-8", "surrogatepass")


def signed_body(rng: random.Random, webhook: Webhook) -> tuple[bytes, dict[str, str]]:
    """One mutated sample of ``webhook``, serialized, with the headers that sign it."""
    body = encode(rng, mutate(rng, rng.choice(webhook.samples)))
    return body, {**webhook.sign(body), "Content-Type": "application/json"}


class KafkaLikeSink(MemoryEventSink):
    """A memory sink that also refuses what the triage worker would.

    :class:`~edge.sink.MemoryEventSink` already refuses what the Kafka sink refuses (an
    event that cannot be written as JSON, a record over the producer's size limit; see
    tests/integration/edge/test_sink_contract.py); here ``publish`` also fails for an event the
    worker rejects (text or JSON over its limits), so the edge answers 503 and a test
    sees it.
    """

    async def publish(self, events: list[SocialEvent]) -> None:
        for event in events:
            parse_event(event.to_json())  # what the worker does first: the limits of records.wire
        await super().publish(events)
