"""Retention: conversations, pending escalations and delivery-ledger entries expire.

Pure rules first (which rows expire at ``now``, the ledger's wire form, the setting),
then the real embedded broker with an injected clock: rows decided at T are deleted
once the clock passes T + retention, with tombstones on the tables' changelogs, and a
restarted worker recovers without them; recent activity keeps a conversation; and an
acknowledgment redelivered within the retention is still not sent twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from brokers.client import partition_of
from promises.rules import PendingEscalation
from records.actions import (
    EXPIRE,
    EXPIRE_LEDGER,
    ActionInvalid,
    ExpireTick,
    decode_action,
)
from streams.retention import (
    EXPIRE_TICK_SIZE,
    LEDGER_BATCH,
    RESEND_AFTER,
    FirstSight,
    InFlight,
    LedgerEntry,
    apply_expiry,
    apply_ledger_expiry,
    conversation_activity,
    expire_ticks,
    expired,
    expiries,
    ledger_expiries,
    ledger_status,
    ledger_ticks,
)
from streams.settings import Settings
from tests.support.streams_retention import RETENTION, T, seconds
from triage.state import ConversationState, last_activity_of


def customer(at: datetime, **changes) -> ConversationState:
    """A care-it conversation whose customer wrote at ``at``, acknowledged then, still waiting."""
    base = ConversationState(team="care-it", customer_at=seconds(at), waiting_since=seconds(at), ack_at=seconds(at),
                             channel="facebook", promised="Ciao")
    return replace(base, **changes)


def pending(routed_at: datetime) -> PendingEscalation:
    return PendingEscalation(event_id="fb:m_1", team="care-it", conversation="c", mode="reduced", routed_at=routed_at)


class TestLastActivity:
    @pytest.mark.parametrize(
        ("state", "expected"),
        [
            pytest.param(customer(T), seconds(T), id="customer_message"),
            pytest.param(customer(T, staff_at=seconds(T) + 60), seconds(T) + 60, id="staff_reply"),
            pytest.param(customer(T, claimed_at=seconds(T) + 90, claimed_by="luca"), seconds(T) + 90, id="claim"),
            pytest.param(customer(T, routed_at=seconds(T) + 5), seconds(T) + 5, id="route"),
            pytest.param(customer(T, reply_by=seconds(T) + 2400), seconds(T) + 2400, id="reply_by_promised"),
            pytest.param(ConversationState(team="").answered(), None, id="no_instant"),
        ],
    )
    def test_latest_instant_the_state_records(self, state, expected) -> None:
        """The method and the fast path over the stored bytes agree."""
        assert (expected, expected) == (state.last_activity(), last_activity_of(state.to_bytes()))

    def test_pending_escalation_counts(self) -> None:
        """A route later than every instant of the state is the conversation's last activity."""
        later = T + timedelta(hours=3)
        assert seconds(later) == conversation_activity(customer(T).to_bytes(), pending(later).to_bytes())


class TestExpiryRule:
    @pytest.mark.parametrize(
        ("state", "now", "expected"),
        [
            pytest.param(customer(T), T + RETENTION - timedelta(seconds=1), False, id="just_inside"),
            pytest.param(customer(T), T + RETENTION, False, id="exactly_the_retention_is_kept"),
            pytest.param(customer(T), T + RETENTION + timedelta(seconds=1), True, id="just_past"),
            # Every promise about it ended long ago (the longest, a comment's private
            # reply, is 7 days): an unanswered conversation expires like any other.
            pytest.param(customer(T, reply_by=seconds(T) + 2400), T + RETENTION + timedelta(hours=1), True,
                         id="waiting_customer_past_retention_expires"),
            pytest.param(customer(T, staff_at=seconds(T + RETENTION) - 60), T + RETENTION + timedelta(hours=1), False,
                         id="recent_staff_reply_keeps_it"),
            pytest.param(customer(T, claimed_by="luca", claimed_at=seconds(T + timedelta(days=1))),
                         T + RETENTION + timedelta(hours=1), False, id="recent_claim_keeps_it"),
            pytest.param(customer(T, status="answered"), T + RETENTION + timedelta(hours=1), True, id="answered_expires"),
        ],
    )
    def test_a_conversation_expires_once_its_last_activity_is_older_than_the_retention(self, state, now, expected) -> None:
        expected_rows = [(b"c", state.last_activity())] if expected else []
        assert expected_rows == expiries([(b"c", state.to_bytes())], {}, now, RETENTION)

    def test_a_route_after_the_messages_keeps_it(self) -> None:
        """The pending escalation's route time counts: routed a day later, not expired yet."""
        rows = [(b"c", customer(T).to_bytes())]
        escalations = {b"c": pending(T + timedelta(days=1)).to_bytes()}
        assert [] == expiries(rows, escalations, T + RETENTION + timedelta(hours=1), RETENTION)

    def test_an_escalation_row_without_a_conversation_expires_on_its_own(self) -> None:
        escalations = {b"orphan": pending(T).to_bytes()}
        assert [(b"orphan", seconds(T))] == expiries([], escalations, T + RETENTION + timedelta(seconds=1), RETENTION)

    def test_a_row_without_any_instant_expires_a_retention_after_first_sight(self) -> None:
        """An 'answered' mark on a conversation never decided: kept until first sight + retention."""
        rows = [(b"c", ConversationState(team="").answered().to_bytes())]
        sight = FirstSight()
        first = expiries(rows, {}, T, RETENTION, sight)
        inside = expiries(rows, {}, T + RETENTION, RETENTION, sight)
        past = expiries(rows, {}, T + RETENTION + timedelta(seconds=1), RETENTION, sight)
        without = expiries(rows, {}, T + RETENTION * 10, RETENTION)
        assert ([], [], [(b"c", None)], []) == (first, inside, past, without)

    def test_first_sight_forgets_rows_that_are_gone(self) -> None:
        sight = FirstSight()
        expiries([(b"c", ConversationState(team="").to_bytes())], {}, T, RETENTION, sight)
        expiries([], {}, T + timedelta(hours=1), RETENTION, sight)
        assert {} == sight.seen

    @pytest.mark.parametrize(
        ("last", "now", "expected"),
        [
            pytest.param(None, T, False, id="unknown_never"),
            pytest.param(seconds(T), T + RETENTION, False, id="equal_kept"),
            pytest.param(seconds(T), T + RETENTION + timedelta(seconds=1), True, id="older_expired"),
        ],
    )
    def test_expired(self, last, now, expected) -> None:
        assert expected == expired(last, now, RETENTION)

    def test_the_agent_decides_as_the_sweep_did(self) -> None:
        """The sweep and the tick's whole-second instant agree a fraction of a second past the retention
        (else the tick would do nothing, and the row wait for the expiry to be posted again)."""
        decisions = []
        for fraction in (600_000, 1_600_000):
            now = T + RETENTION + timedelta(microseconds=fraction)
            [(_, _, tick)] = list(expire_ticks([(b"c", seconds(T))], 1, now))
            action = decode_action(tick.to_json())
            decisions.append((expired(seconds(T), now, RETENTION), expired(seconds(T), action.instant, RETENTION)))
        assert [(False, False), (True, True)] == decisions

    def test_expire_ticks_name_each_conversation_and_its_activity_seen_per_partition(self) -> None:
        """One tick per partition (and per EXPIRE_TICK_SIZE), sent to it; a non-UTF-8 key round-trips."""
        keys = [b"fb:PAGE_111:PSID_222", b"tg:bot:777", b"odd:\xff\xfe"]
        expiring = [(key, seconds(T) + n) for n, key in enumerate(keys)]
        ticks = list(expire_ticks(expiring, 2, T + RETENTION))
        found = {}
        for partition, record_key, tick in ticks:
            action = decode_action(tick.to_json())
            assert (EXPIRE, f"expire:p{partition}".encode(), seconds(T + RETENTION)) == (action.action, record_key, action.seconds)
            for name, seen in zip(action.keys, action.seen, strict=True):
                found[name.encode("latin-1")] = (partition, seen)
        assert {key: (partition_of(key, 2), seconds(T) + n) for n, key in enumerate(keys)} == found

    def test_a_tick_names_at_most_expire_tick_size_conversations(self) -> None:
        expiring = [(f"tg:bot:{n}".encode(), seconds(T)) for n in range(3 * EXPIRE_TICK_SIZE)]
        sizes = [len(tick.expired) for _, _, tick in expire_ticks(expiring, 1, T)]
        assert [EXPIRE_TICK_SIZE] * 3 == sizes


def tables_app(partitions: int = 2, **tables: dict) -> SimpleNamespace:
    """What the apply functions read of the app: its tables (dicts here) and settings."""
    settings = SimpleNamespace(retention=RETENTION, partitions=partitions)
    return SimpleNamespace(settings=settings, conversations=tables.get("conversations", {}),
                           escalations=tables.get("escalations", {}), deliveries=tables.get("deliveries", {}))


def expire_action(expiring: list[tuple[bytes, int | None]], now: datetime) -> tuple[int, ExpireTick]:
    [(partition, _, tick)] = list(expire_ticks(expiring, 2, now))
    return partition, decode_action(tick.to_json())


class TestApplyingTicks:
    def test_an_expiry_deletes_the_state_and_the_escalation(self) -> None:
        key = b"fb:PAGE_111:PSID_222"
        app = tables_app(conversations={key: customer(T).to_bytes()}, escalations={key: pending(T).to_bytes()})
        partition, action = expire_action([(key, seconds(T))], T + RETENTION + timedelta(seconds=1))
        assert (1, {}, {}) == (apply_expiry(app, action, partition), app.conversations, app.escalations)

    @pytest.mark.parametrize(
        "case",
        [
            pytest.param("new_message_meanwhile", id="stale_a_message_came_meanwhile"),
            pytest.param("other_partition", id="another_partitions_tick"),
            pytest.param("within_retention", id="tick_instant_within_retention"),
        ],
    )
    def test_a_stale_or_misplaced_tick_does_nothing(self, case) -> None:
        key = b"fb:PAGE_111:PSID_222"
        now = T + RETENTION + timedelta(seconds=1)
        partition, action = expire_action([(key, seconds(T))], now if case != "within_retention" else T + RETENTION)
        state = customer(T + timedelta(days=1)) if case == "new_message_meanwhile" else customer(T)
        app = tables_app(conversations={key: state.to_bytes()})
        target = 1 - partition if case == "other_partition" else partition
        assert (0, [key]) == (apply_expiry(app, action, target), list(app.conversations))

    def test_ledger_ticks_delete_expired_entries_stamp_plain_ones_and_leave_the_rest(self) -> None:
        old, recent = seconds(T), seconds(T + RETENTION)
        ledger = {
            b"ack:1": LedgerEntry("delivered", old, 0).to_bytes(),
            b"ack:2": LedgerEntry("delivered", recent, 0).to_bytes(),  # written again since the sweep
            b"ack:3": b"dead",  # from before the timed format
            b"ack:4": LedgerEntry("delivered", old, 1).to_bytes(),  # another partition's
        }
        app = tables_app(deliveries=ledger)
        now = T + RETENTION + timedelta(seconds=1)
        [(_, _, tick)] = list(ledger_ticks({0: [b"ack:1", b"ack:2", b"ack:3", b"ack:4", b"ack:gone"]}, now))
        deleted = apply_ledger_expiry(app, decode_action(tick.to_json()), 0)
        expected = {b"ack:2": ledger[b"ack:2"], b"ack:3": LedgerEntry("dead", seconds(now), 0).to_bytes(),
                    b"ack:4": ledger[b"ack:4"]}
        assert (1, expected) == (deleted, app.deliveries)


class TestInFlight:
    def test_an_expiry_is_posted_again_only_when_changed_or_lost(self) -> None:
        """Posted at 0: not again at 10 s; again when its version changed, or after RESEND_AFTER."""
        posted = InFlight()
        first = posted.fresh(b"c", 100, 0.0)
        repeat = posted.fresh(b"c", 100, 10.0)
        changed = posted.fresh(b"c", 200, 11.0)
        lost = posted.fresh(b"c", 200, 11.0 + RESEND_AFTER)
        posted.keep_only(set())
        assert (True, False, True, True, {}) == (first, repeat, changed, lost, posted.sent)


class TestLedgerEntries:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(b"delivered@1764000000:3", LedgerEntry("delivered", 1764000000, 3), id="current"),
            pytest.param(b"delivered", LedgerEntry("delivered"), id="plain_status_from_before"),
            pytest.param(b"dead@1764000000:", LedgerEntry("dead", 1764000000), id="no_partition"),
            pytest.param(b"sending@soon:1", LedgerEntry("sending"), id="unreadable_time"),
        ],
    )
    def test_wire_form(self, raw, expected) -> None:
        """The status, when it was written and the partition holding it; a plain status reads as before."""
        assert (expected, expected.status) == (LedgerEntry.parse(raw), ledger_status(raw))

    def test_round_trip(self) -> None:
        entry = LedgerEntry("retrying", seconds(T), 2)
        assert (b"retrying@" + str(seconds(T)).encode() + b":2", entry) == (entry.to_bytes(), LedgerEntry.parse(entry.to_bytes()))

    def test_each_held_partition_gets_its_expired_and_unstamped_keys(self) -> None:
        """Expired entries go to the partition holding them; recent ones stay; plain ones are stamped."""
        old, recent = seconds(T), seconds(T + RETENTION)
        rows = [
            (b"ack:fb:m_1", LedgerEntry("delivered", old, 0).to_bytes()),
            (b"ack:fb:m_2", LedgerEntry("delivered", recent, 0).to_bytes()),
            (b"ack:fb:m_3", LedgerEntry("dead", old, 1).to_bytes()),
            (b"ack:fb:m_4", LedgerEntry("delivered", old, 2).to_bytes()),  # partition not held
            (b"ack:fb:m_5", b"delivered"),  # from before: partition from the store
            (b"ack:fb:m_6", b"delivered"),  # from before, partition unknown: left
        ]
        partition_of = {b"ack:fb:m_5": 1}.get
        due = ledger_expiries(rows, {0, 1}, T + RETENTION + timedelta(seconds=1), RETENTION, partition_of)
        assert {0: [b"ack:fb:m_1"], 1: [b"ack:fb:m_3", b"ack:fb:m_5"]} == due

    def test_ticks_are_sent_to_the_partition_in_batches(self) -> None:
        keys = [f"ack:{n}".encode() for n in range(LEDGER_BATCH + 1)]
        ticks = list(ledger_ticks({3: keys}, T))
        actions = [decode_action(tick.to_json()) for _, _, tick in ticks]
        expected = ([3, 3], [b"ledger:p3"] * 2, [EXPIRE_LEDGER] * 2, [LEDGER_BATCH, 1])
        assert expected == ([p for p, _, _ in ticks], [k for _, k, _ in ticks], [a.action for a in actions],
                            [len(a.keys) for a in actions])

    @pytest.mark.parametrize(
        "tick",
        [
            pytest.param({"action": EXPIRE_LEDGER, "conversation": "ledger:p0", "at": "2026-11-23T20:14:00+00:00"},
                         id="ledger_without_keys"),
            pytest.param({"action": EXPIRE, "conversation": "expire:p0", "expired": [["c", "yesterday"]],
                          "at": "2026-11-23T20:14:00+00:00"}, id="expire_with_text_seen"),
            pytest.param({"action": EXPIRE, "conversation": "expire:p0", "at": "2026-11-23T20:14:00+00:00"},
                         id="expire_without_conversations"),
        ],
    )
    def test_invalid_ticks_are_refused(self, tick) -> None:
        with pytest.raises(ActionInvalid):
            decode_action(orjson.dumps(tick))


class TestRetentionSetting:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(None, timedelta(days=14), id="default_14_days"),
            pytest.param("P30D", timedelta(days=30), id="iso_8601"),
            pytest.param("172800", timedelta(days=2), id="seconds"),
            pytest.param("PT36H", timedelta(hours=36), id="just_over_a_day"),
        ],
    )
    def test_accepted(self, monkeypatch: pytest.MonkeyPatch, value, expected) -> None:
        monkeypatch.delenv("OFFHOURS_RETENTION", raising=False)
        if value is not None:
            monkeypatch.setenv("OFFHOURS_RETENTION", value)
        assert expected == Settings().retention

    @pytest.mark.parametrize("value", ["P1D", "3600", "PT0S"])
    def test_one_day_or_less_stops_the_command(self, monkeypatch: pytest.MonkeyPatch, capsys, value) -> None:
        """The command names the variable and says what it needs; exit 2."""
        from offhours.cli import main

        monkeypatch.setenv("OFFHOURS_RETENTION", value)
        assert 2 == main(["run"])
        assert "  OFFHOURS_RETENTION: must be longer than 1 day" in capsys.readouterr().err

