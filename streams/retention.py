"""Retention: what the workers forget, and when (``settings.retention``, default 14 days).

Without it every conversation ever seen stays in the ``conversations`` table, its
pending escalation in ``escalations`` and every acknowledgment and notification in the
delivery ledger (``deliveries``), in memory and in the tables' changelogs, for good.

The rules (pure, tested on their own):

- A conversation's *last activity* is the latest instant its state records (the
  customer's last message and since when they wait, the acknowledgment and the reply-by
  time it promised, the last staff reply, the route, the claim, the reply window routed
  early: :meth:`~triage.state.ConversationState.last_activity`) and its pending
  escalation's route time. The conversation **expires** when that is older than the
  retention (:func:`expired`: ``now - last > retention``; exactly the retention is
  kept). This holds for a customer still waiting, too: the longest promise offhours
  makes (a comment's 7-day private reply) ended long before, kept or breached, and
  the handover and reminders already told the staff. A new message after the expiry
  starts the conversation afresh.
- A state that records no instant at all (an "answered" action for a conversation
  never decided) expires a retention after the sweeping worker first saw it
  (:class:`FirstSight`, in the worker's memory: a restart starts that wait again).
- A **delivery-ledger entry** is stored with the time it was written and the partition
  whose changelog holds it (:class:`LedgerEntry`, ``delivered@1764000000:3``) and
  expires when that time is older than the retention. An entry written before this
  format (a plain ``delivered``) is stamped with the time a sweep first finds it, so it
  expires a retention later; its partition comes from the store's recovery.

So "never a second acknowledgment" holds within the retention: an outbox record
redelivered after its ledger entry expired would be sent again. Nothing redelivers that
late: the platforms retry a webhook for about 36 hours, the ingest remembers delivery
ids for 48, and Kafka redelivers an outbox record only until its offset is committed.

How it runs: every sweep (:func:`streams.sweeps.sweep_promises`) posts, for the
expired conversations of each partition this worker holds, ``expire`` ticks on the
actions topic, sent to that partition, each naming up to 500 conversations with the
last activity the sweep saw of each; and ``expire_ledger`` ticks naming the partition's
expired (or unstamped) ledger keys. The actions agent owns the partition: it applies
the tick against the rows at that moment (:func:`apply_expiry`,
:func:`apply_ledger_expiry`), so the delete runs with an event of the right partition
and ``del table[key]`` writes the tombstone (a record with no value) to that
partition's changelog, which compaction then removes and recovery honours. A tick that
is stale (the conversation had a message meanwhile, the entry was written again) does
nothing; a repeated one finds nothing to delete.

The ``reply-times`` table needs no expiry: one entry per partition (``p<N>``), each
holding at most the latest 500 responses per team and mode (within 28 days of the
newest), so it is bounded by the partitions and the teams, not by the conversations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from brokers.client import partition_of
from records.actions import ExpireTick, LedgerExpireTick
from triage.state import ConversationState, last_activity_of

if TYPE_CHECKING:
    from streams.app import OffhoursApp

log = logging.getLogger(__name__)

EXPIRE_BATCH = 10_000
"""The most conversations one sweep expires (the rest wait for the next sweep):
after an outage, or the first sweep over tables older than the retention, the deletes
are spread over several sweeps instead of one burst on the actions topic."""

LEDGER_BATCH = 500
"""The most ledger keys one ``expire_ledger`` tick names."""

LEDGER_TICKS = 8
"""The most ``expire_ledger`` ticks one sweep posts per partition."""


# -- the rules --------------------------------------------------------------------------


def _seconds(instant: datetime) -> int:
    # Whole seconds, as the agent reads a tick's instant (records.actions, ``seconds``): it then
    # decides exactly as the sweep did, never "not yet" for a row the sweep found expired.
    return int(instant.timestamp())


def expired(last: int | float | None, now: datetime, retention: timedelta) -> bool:
    """True when ``last`` (POSIX seconds) is older than ``retention`` at ``now``.

    Exactly ``retention`` old is kept; no known activity (None) never expires here.
    """
    return last is not None and _seconds(now) - last > retention.total_seconds()


def escalation_activity(raw: bytes | str) -> int:
    """When a stored pending escalation was routed (POSIX seconds): its last activity."""
    routed_at = datetime.fromisoformat(orjson.loads(raw)["routed_at"])
    return int(routed_at.timestamp())


def conversation_activity(state: bytes | ConversationState | None, pending: bytes | None) -> int | None:
    """The last activity of a conversation: of its state row (stored or decoded) and its pending escalation row."""
    instants = [
        None if state is None else state.last_activity() if isinstance(state, ConversationState)
        else last_activity_of(state),
        None if pending is None else escalation_activity(pending),
    ]
    return max((at for at in instants if at is not None), default=None)


@dataclass
class FirstSight:
    """When a sweep first saw each row that records no instant (POSIX seconds), per worker."""

    seen: dict[bytes, float] = field(default_factory=dict)

    def since(self, key: bytes, now: datetime) -> float:
        return self.seen.setdefault(key, _seconds(now))

    def keep_only(self, keys: set[bytes], among: Collection[bytes] | None = None) -> None:
        """Forget the rows no longer without an instant (deleted, or active since): those
        not in ``keys``, of all rows seen or only of ``among`` (the rows a sweep looked at)."""
        candidates = self.seen if among is None else [key for key in among if key in self.seen]
        for key in [key for key in candidates if key not in keys]:
            del self.seen[key]


def expiries(
    conversations: Iterable[tuple[bytes, bytes | ConversationState]],
    escalations: Mapping[bytes, bytes],
    now: datetime,
    retention: timedelta,
    first_sight: FirstSight | None = None,
    partial: bool = False,
) -> list[tuple[bytes, int | None]]:
    """The conversations expired at ``now``: ``(key, last activity seen)`` each.

    ``conversations`` and ``escalations`` are rows of the two tables (key: the
    conversation; a state stored or decoded); an escalation row without a conversation row counts on its own.
    A row with no instant at all expires ``retention`` after ``first_sight`` first saw
    it (never without ``first_sight``), with ``None`` as its last activity. ``partial``:
    the rows are only those a sweep looked at (its due-time index,
    :mod:`streams.due_index`), so ``first_sight`` forgets only among them.
    """
    found: list[tuple[bytes, int | None]] = []
    unknown: set[bytes] = set()
    seen_keys: set[bytes] = set()
    for key, value in conversations:
        seen_keys.add(key)
        last = conversation_activity(value, escalations.get(key))
        if last is None:
            unknown.add(key)
            if first_sight is not None and expired(first_sight.since(key, now), now, retention):
                found.append((key, None))
        elif expired(last, now, retention):
            found.append((key, last))
    for key, value in escalations.items():
        if key not in seen_keys:
            last = escalation_activity(value)
            if expired(last, now, retention):
                found.append((key, last))
    if first_sight is not None:
        first_sight.keep_only(unknown, among=seen_keys | set(escalations) if partial else None)
    return found


EXPIRE_TICK_SIZE = 500
"""The most conversations one ``expire`` tick names."""


def _key_text(key: bytes) -> str:
    # Latin-1 maps every byte to one character and back: a conversation key that is not
    # UTF-8 still round-trips exactly (platform conversation ids are ASCII anyway).
    return key.decode("latin-1")


def expire_ticks(
    expiring: Iterable[tuple[bytes, int | None]], partitions: int, now: datetime
) -> Iterator[tuple[int, bytes, ExpireTick]]:
    """``(partition, record key, tick)``: the actions-topic records asking each partition's
    owner to expire its conversations among ``expiring``.

    One tick names up to :data:`EXPIRE_TICK_SIZE` conversations of one partition, each
    with the last activity the sweep saw (it applies to a conversation only while that
    still is its last activity), and is sent to that partition: the actions agent takes
    its events one at a time, and a tick per conversation cost the worker more than
    half its throughput in the soak benchmark (bench/README.md).
    """

    grouped: dict[int, list[tuple[str, int | None]]] = {}
    for key, seen in expiring:
        grouped.setdefault(partition_of(key, partitions), []).append((_key_text(key), seen))
    for partition, items in sorted(grouped.items()):
        name = f"expire:p{partition}"
        for start in range(0, len(items), EXPIRE_TICK_SIZE):
            tick = ExpireTick(conversation=name, expired=tuple(items[start:start + EXPIRE_TICK_SIZE]), at=now)
            yield partition, name.encode(), tick


# -- the delivery ledger ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One delivery-ledger value: the status, when it was written, the partition that holds it.

    Wire form ``<status>@<POSIX seconds>:<partition>`` (``delivered@1764000000:3``);
    an entry written before this format is the plain status, read with ``at`` and
    ``partition`` None.
    """

    status: str
    at: int | None = None
    partition: int | None = None

    def to_bytes(self) -> bytes:
        if self.at is None:
            return self.status.encode()
        partition = "" if self.partition is None else str(self.partition)
        return f"{self.status}@{self.at}:{partition}".encode()

    @classmethod
    def parse(cls, raw: bytes | str) -> LedgerEntry:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        status, sep, rest = text.partition("@")
        if not sep:
            return cls(status)
        at, _, partition = rest.partition(":")
        try:
            return cls(status, int(at), int(partition) if partition else None)
        except ValueError:
            return cls(status)


def ledger_status(raw: bytes | str) -> str:
    """The status of a stored ledger value (either wire form)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.partition("@")[0]


def ledger_due(entry: LedgerEntry, now: datetime, retention: timedelta) -> bool:
    """True when a sweep must send ``entry`` to its owner: expired, or not yet stamped."""
    return entry.at is None or expired(entry.at, now, retention)


def ledger_expiries(
    rows: Iterable[tuple[bytes, bytes]],
    held: Iterable[int],
    now: datetime,
    retention: timedelta,
    partition_of: Any = None,
) -> dict[int, list[bytes]]:
    """The ledger keys each held partition's owner must expire (or stamp) at ``now``.

    ``partition_of(key)`` finds the partition of an entry without one (written before
    the format carried it); without it, or when it answers None, the entry is left.
    """
    wanted = set(held)
    due: dict[int, list[bytes]] = {}
    for key, value in rows:
        if value is None:
            continue
        entry = LedgerEntry.parse(value)
        if not ledger_due(entry, now, retention):
            continue
        partition = entry.partition
        if partition is None and partition_of is not None:
            partition = partition_of(key)
        if partition is not None and partition in wanted:
            due.setdefault(partition, []).append(key)
    return due


def ledger_ticks(due: Mapping[int, list[bytes]], now: datetime) -> Iterator[tuple[int, bytes, LedgerExpireTick]]:
    """``(partition, key, tick)`` for :func:`ledger_expiries`: at most :data:`LEDGER_TICKS`
    ticks of :data:`LEDGER_BATCH` keys per partition."""
    for partition, keys in sorted(due.items()):
        name = f"ledger:p{partition}"
        for start in range(0, min(len(keys), LEDGER_BATCH * LEDGER_TICKS), LEDGER_BATCH):
            chunk = tuple(key.decode("utf-8", "replace") for key in keys[start:start + LEDGER_BATCH])
            yield partition, name.encode(), LedgerExpireTick(conversation=name, keys=chunk, at=now)


def stored_partition(table: Any, key: bytes) -> int | None:
    """The partition whose changelog holds ``key``, as the table's store knows it.

    For entries recovered from the changelog: Faust's memory store notes each
    recovered key's partition, the RocksDB store keeps one database per partition.
    None when the store cannot tell.
    """
    store = getattr(table, "data", None)
    known = getattr(store, "_key_partition", None)
    if isinstance(known, Mapping) and key in known:
        return int(known[key])
    dbs = getattr(store, "_dbs", None)
    if isinstance(dbs, Mapping):
        for partition, db in dbs.items():
            try:
                if db.get(key) is not None:
                    return int(partition)
            except Exception:  # a closed database: the store cannot tell
                continue
    return None


# -- the worker side --------------------------------------------------------------------

RESEND_AFTER = 60.0
"""Seconds (monotonic) before a sweep posts the same expiry again: the first was lost."""


@dataclass
class InFlight:
    """The expiries this worker posted and not yet saw applied: a sweep does not post them again.

    Without it, a sweep running while the actions agent is still behind would post every
    expired row again (the repeats do nothing but cost an event each). An expiry is
    posted again after :data:`RESEND_AFTER` seconds (a tick lost in a rebalance), or when
    the row changed since (``version``: the last activity seen, the ledger time).
    """

    sent: dict[bytes, tuple[object, float]] = field(default_factory=dict)

    def fresh(self, key: bytes, version: object, now: float) -> bool:
        """True (and noted as posted at ``now``) unless ``key`` at ``version`` was posted recently."""
        earlier = self.sent.get(key)
        if earlier is not None and earlier[0] == version and now - earlier[1] < RESEND_AFTER:
            return False
        self.sent[key] = (version, now)
        return True

    def keep_only(self, keys: set[bytes]) -> None:
        """Forget the keys no longer due (deleted, or active again)."""
        for key in [key for key in self.sent if key not in keys]:
            del self.sent[key]


def _memory(app: OffhoursApp, name: str, kind: type) -> Any:
    memory = getattr(app, name, None)
    if memory is None:
        memory = kind()
        setattr(app, name, memory)
    return memory


def _first_sight(app: OffhoursApp) -> FirstSight:
    return _memory(app, "retention_first_sight", FirstSight)


def ledger_table(app: OffhoursApp) -> Any:
    """The delivery ledger table of ``app``; None when the responders do not run here."""
    return getattr(app, "deliveries", None)


def expired_conversations(
    app: OffhoursApp,
    conversations: list[tuple[bytes, bytes | ConversationState]],
    escalations: list[tuple[bytes, bytes]],
    now: datetime,
    partial: bool = False,
) -> list[tuple[bytes, int | None]]:
    """The held conversations expired at ``now`` (see :func:`expiries`; ``partial``: only the
    rows the due-time index gave the sweep)."""
    return expiries(conversations, dict(escalations), now, app.settings.retention, _first_sight(app), partial)


def first_sight_of(app: OffhoursApp) -> FirstSight:
    """When this worker's sweeps first saw each row that records no instant."""
    return _first_sight(app)


async def send_expiries(app: OffhoursApp, expiring: list[tuple[bytes, int | None]], now: datetime) -> int:
    """Post the ``expire`` ticks of ``expiring`` not posted recently (at most :data:`EXPIRE_BATCH`
    conversations); returns how many conversations they name."""
    posted = _memory(app, "retention_posted", InFlight)
    posted.keep_only({key for key, _ in expiring})
    clock = time.monotonic()
    chosen: list[tuple[bytes, int | None]] = []
    for key, seen in expiring:
        if len(chosen) >= EXPIRE_BATCH:
            break
        if posted.fresh(key, seen, clock):
            chosen.append((key, seen))
    for partition, key, tick in expire_ticks(chosen, app.settings.partitions, now):
        await app.stream_topics.actions.send(key=key, value=tick.to_json(), partition=partition)
    return len(chosen)


async def sweep_ledger(app: OffhoursApp, now: datetime, held: Iterable[int]) -> int:
    """Post the ``expire_ledger`` ticks due at ``now`` for the ledger partitions in ``held``."""
    table = ledger_table(app)
    if table is None:
        return 0
    rows = list(table.items())
    due = ledger_expiries(rows, held, now, app.settings.retention, lambda key: stored_partition(table, key))
    posted = _memory(app, "retention_ledger_posted", InFlight)
    wanted = {key for keys in due.values() for key in keys}
    posted.keep_only(wanted)
    values = {key: value for key, value in rows if key in wanted}
    clock = time.monotonic()
    most = LEDGER_BATCH * LEDGER_TICKS
    fresh: dict[int, list[bytes]] = {}
    for partition, keys in due.items():
        chosen = fresh[partition] = []
        for key in keys:
            if len(chosen) >= most:
                break
            if posted.fresh(key, values.get(key), clock):
                chosen.append(key)
    count = 0
    for partition, key, tick in ledger_ticks({p: keys for p, keys in fresh.items() if keys}, now):
        await app.stream_topics.actions.send(key=key, value=tick.to_json(), partition=partition)
        count += 1
    return count


def apply_expiry(app: OffhoursApp, tick: ExpireTick, partition: int) -> int:
    """Delete the tick's expired conversations (state and pending escalation); returns how many.

    A conversation is deleted only while its last activity is still the one the sweep
    saw and still older than the retention at the tick's instant (a message since makes
    the tick stale for it), and only when it belongs to ``partition``, the tick's own:
    the actions agent's current event, so each delete writes its tombstone to that
    partition of the table's changelog.
    """

    retention = app.settings.retention
    deleted = 0
    for name, seen in zip(tick.keys, tick.seen, strict=True):
        key = name.encode("latin-1")
        if partition_of(key, app.settings.partitions) != partition:
            continue
        state = app.conversations.get(key)
        pending = app.escalations.get(key)
        if state is None and pending is None:
            continue
        last = conversation_activity(state, pending)
        if last != seen or (last is not None and not expired(last, tick.instant, retention)):
            continue
        if state is not None:
            del app.conversations[key]
        if pending is not None:
            del app.escalations[key]
        deleted += 1
    if deleted:
        log.debug("%d conversations of partition %d expired", deleted, partition)
    return deleted


def apply_ledger_expiry(app: OffhoursApp, tick: LedgerExpireTick, partition: int) -> int:
    """Delete the tick's ledger entries still expired at its instant; stamp unstamped ones.

    ``partition`` is the tick's own (the actions agent's current event): the entries
    named were swept from it, and the deletes' tombstones go to it. An entry of another
    partition, or written again since the sweep, is left. Returns how many were deleted.
    """
    table = ledger_table(app)
    if table is None:
        return 0
    retention = app.settings.retention
    deleted = 0
    for name in tick.keys:
        key = name.encode()
        raw = table.get(key)
        if raw is None:
            continue
        entry = LedgerEntry.parse(raw)
        if entry.partition is not None and entry.partition != partition:
            continue
        if entry.at is None:
            table[key] = LedgerEntry(entry.status, tick.seconds, partition).to_bytes()
        elif expired(entry.at, tick.instant, retention):
            del table[key]
            deleted += 1
    return deleted
