"""The actions topic's records (records.actions): the wire JSON exactly as the writers wrote it
before the records were typed, decoded and encoded back byte for byte; and the reader's faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from records.actions import (
    ActionInvalid,
    Answered,
    Claim,
    EscalationTick,
    ExpireTick,
    LedgerExpireTick,
    ReminderTick,
    WindowTick,
    decode_action,
)

# Produced by the writers as they were before records.actions (edge.actions.action_record,
# escalation_tick and promise_ticks, today in promises.ticks and streams.sweeps, streams.retention.expire_ticks
# and ledger_ticks).
CLAIM_BY_LINK = (b'{"action_id":"claim:link:2b4bf851019c0f84f62c21001d443c09","action":"claim",'
                 b'"conversation":"fb:PAGE_111:PSID_222","event_id":null,"member":"marta","by":"link:marta",'
                 b'"via":"link","at":"2026-11-23T21:20:00+01:00"}')
ANSWERED_BY_API = (b'{"action_id":"answered:63b1636181b341fabb27f3450db70ac2","action":"answered",'
                   b'"conversation":"fb:PAGE_111:PSID_222","event_id":"fb:m_abc123","member":null,"by":"ops:anna",'
                   b'"via":"api","at":"2026-11-23T21:20:00+01:00"}')
ESCALATE = (b'{"action":"escalate","conversation":"fb:PAGE_111:PSID_222","event_id":"fb:m_1","sent":1,'
            b'"at":"2026-11-23T20:22:05.123456+00:00"}')
ESCALATE_WHOLE_SECOND = (b'{"action":"escalate","conversation":"fb:PAGE_111:PSID_222","event_id":"fb:m_1","sent":1,'
                         b'"at":"2026-11-23T20:22:05+00:00"}')
REMIND = b'{"action":"remind","conversation":"c","event_id":"remind:reply_by:c:1795203600","at":"2026-11-21T17:00:00+00:00"}'
WINDOW = b'{"action":"window","conversation":"c","sent":1795201200,"at":"2026-11-21T17:00:00+00:00"}'
EXPIRE = ('{"action":"expire","conversation":"expire:p0","expired":[["tg:bot:1",1763900000],["\u00ff\u00feraw",null]],'
          '"at":"2026-11-23T20:22:05.123456+00:00"}').encode()
EXPIRE_LEDGER = (b'{"action":"expire_ledger","conversation":"ledger:p3","keys":["ack:fb:m_1","notice:route:fb:m_1:marta"],'
                 b'"at":"2026-11-23T20:22:05.123456+00:00"}')

ROME_WINTER = timezone(timedelta(hours=1))
SWEPT = datetime(2026, 11, 23, 20, 22, 5, 123456, tzinfo=UTC)
CONVERSATION = "fb:PAGE_111:PSID_222"

WRITTEN = [
    pytest.param(CLAIM_BY_LINK, Claim(conversation=CONVERSATION, member="marta", at=datetime(2026, 11, 23, 21, 20, tzinfo=ROME_WINTER),
                                      by="link:marta", via="link", action_id="claim:link:2b4bf851019c0f84f62c21001d443c09"),
                 id="claim"),
    pytest.param(ANSWERED_BY_API, Answered(conversation=CONVERSATION, member=None, at=datetime(2026, 11, 23, 21, 20, tzinfo=ROME_WINTER),
                                           event_id="fb:m_abc123", by="ops:anna", via="api",
                                           action_id="answered:63b1636181b341fabb27f3450db70ac2"),
                 id="answered"),
    pytest.param(ESCALATE, EscalationTick(conversation=CONVERSATION, event_id="fb:m_1", sent=1, at=SWEPT), id="escalate"),
    pytest.param(ESCALATE_WHOLE_SECOND, EscalationTick(conversation=CONVERSATION, event_id="fb:m_1", sent=1,
                                                       at=SWEPT.replace(microsecond=0)), id="escalate_whole_second"),
    pytest.param(REMIND, ReminderTick(conversation="c", reminder_id="remind:reply_by:c:1795203600",
                                      at=datetime(2026, 11, 21, 17, 0, tzinfo=UTC)), id="remind"),
    pytest.param(WINDOW, WindowTick(conversation="c", customer_at=1795201200, at=datetime(2026, 11, 21, 17, 0, tzinfo=UTC)),
                 id="window"),
    pytest.param(EXPIRE, ExpireTick(conversation="expire:p0", expired=(("tg:bot:1", 1763900000), ("\u00ff\u00feraw", None)),
                                    at=SWEPT), id="expire"),
    pytest.param(EXPIRE_LEDGER, LedgerExpireTick(conversation="ledger:p3", keys=("ack:fb:m_1", "notice:route:fb:m_1:marta"),
                                                 at=SWEPT), id="expire_ledger"),
]


class TestWireForm:
    @pytest.mark.parametrize(("raw", "record"), WRITTEN)
    def test_records_as_written_decode_to_their_type(self, raw: bytes, record) -> None:
        """Each kind, as its writer put it on the topic, reads as its typed record."""
        assert record == decode_action(raw)

    @pytest.mark.parametrize(("raw", "record"), WRITTEN)
    def test_typed_records_encode_the_same_bytes(self, raw: bytes, record) -> None:
        """Encoding the typed record gives the writer's bytes back: same keys, order and values."""
        assert raw == record.to_json()

    def test_new_link_action_has_the_deterministic_id(self) -> None:
        """Claim.new from a link token gives the id the writer gave (sha256 of the token, 32 hex digits)."""
        claim = Claim.new(conversation=CONVERSATION, member="marta", by="link:marta", via="link",
                          at=datetime(2026, 11, 23, 21, 20, tzinfo=ROME_WINTER), link_token="token-marta")
        assert CLAIM_BY_LINK == claim.to_json()

    def test_new_api_action_gets_a_fresh_id(self) -> None:
        """Two API actions get two ids, each ``<action>:<32 hex digits>``."""
        at = datetime(2026, 11, 23, 21, 20, tzinfo=UTC)
        ids = [Answered.new(conversation="c", member=None, by="ops:anna", via="api", at=at).action_id for _ in range(2)]
        assert (2, [True, True]) == (len(set(ids)), [i.startswith("answered:") and len(i) == 41 for i in ids])

    def test_tick_instant_is_in_whole_seconds(self) -> None:
        """The agent decides at the tick's instant cut to whole seconds, as the retention sweep does."""
        tick = decode_action(ESCALATE)
        assert (SWEPT.replace(microsecond=0), int(SWEPT.timestamp())) == (tick.instant, tick.seconds)

    def test_unknown_keys_are_ignored(self) -> None:
        """A record from a newer writer with more keys still reads."""
        data = {**orjson.loads(REMIND), "priority": "high"}
        assert isinstance(decode_action(orjson.dumps(data)), ReminderTick)

    @pytest.mark.parametrize("kind", [Claim, Answered])
    def test_naive_time_is_refused_when_written(self, kind) -> None:
        """A writer cannot build a record without a UTC offset."""
        with pytest.raises(ValueError, match="aware"):
            kind.new(conversation="c", member="m", by="ops:anna", via="api", at=datetime(2026, 11, 23, 21, 20))

    def test_claim_without_member_is_refused_when_written(self) -> None:
        with pytest.raises(ValueError, match="a claim needs a member"):
            Claim(conversation="c", member=None, at=SWEPT)


class TestFaults:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            pytest.param(b"not json", "not JSON", id="not_json"),
            pytest.param(b"[]", "not a JSON object", id="not_object"),
            pytest.param(b'{"action": "close", "conversation": "c", "at": "2026-11-23T21:00:00+01:00"}',
                         "action must be claim or answered", id="unknown_action"),
            pytest.param(b'{"action": "answered", "at": "2026-11-23T21:00:00+01:00"}', "conversation missing",
                         id="no_conversation"),
            pytest.param(b'{"action": "answered", "conversation": "c", "member": 3, "at": "2026-11-23T21:00:00+01:00"}',
                         "member must be a string", id="member_not_text"),
            pytest.param(b'{"action": "claim", "conversation": "c", "at": "2026-11-23T21:00:00+01:00"}',
                         "a claim needs a member", id="claim_without_member"),
            pytest.param(b'{"action": "answered", "conversation": "c", "at": "yesterday"}', "at must be ISO 8601",
                         id="bad_time"),
            pytest.param(b'{"action": "answered", "conversation": "c", "at": "2026-11-23T21:00:00"}',
                         "at needs a UTC offset", id="naive_time"),
            pytest.param(b'{"action": "escalate", "conversation": "c", "event_id": "e", "at": "2026-11-23T21:00:00+01:00"}',
                         "an escalation tick needs event_id and sent", id="escalate_without_sent"),
            pytest.param(b'{"action": "remind", "conversation": "c", "at": "2026-11-23T21:00:00+01:00"}',
                         "a reminder tick needs event_id (the reminder id)", id="remind_without_id"),
            pytest.param(b'{"action": "window", "conversation": "c", "sent": "x", "at": "2026-11-23T21:00:00+01:00"}',
                         "a reply-window tick needs sent (the customer message time)", id="window_without_sent"),
            pytest.param(b'{"action": "expire", "conversation": "expire:p0", "expired": [["c", "yesterday"]],'
                         b' "at": "2026-11-23T21:00:00+01:00"}',
                         "an expiry tick needs expired: [conversation, last activity or null] pairs", id="expire_bad_pair"),
            pytest.param(b'{"action": "expire_ledger", "conversation": "ledger:p0", "at": "2026-11-23T21:00:00+01:00"}',
                         "a ledger expiry tick needs keys (a list of ledger keys)", id="ledger_without_keys"),
        ],
    )
    def test_unreadable_records_say_why(self, raw: bytes, reason: str) -> None:
        """The reader names the first fault it finds."""
        with pytest.raises(ActionInvalid) as caught:
            decode_action(raw)
        assert reason == str(caught.value)
