"""The stop of ``offhours run``: finish what was accepted, hand back the rest (README: Stopping).

A stop (SIGTERM, SIGINT) goes through these steps, each one here:

1. **Stop accepting.** :class:`Draining` is set: the webhooks answer ``503`` with
   ``Retry-After`` (:func:`edge.app.draining_middleware`; the platforms retry, so nothing
   is refused for good) and ``/readyz`` answers ``503`` (``"accepting": false``), so a
   balancer stops sending traffic; ``/healthz`` stays ``200`` until the process exits.
   The promise timers stop (a sweep's ticks would be new work).
2. **Drain** (:func:`drain`): the worker keeps deciding and delivering until its consumer
   group has committed, on every partition it holds, the events topic up to where it
   ended when the stop began and the actions, acks and routes topics up to where they end
   (read again until nothing new comes, at most :data:`SETTLE_ROUNDS` times), with no
   delivery in flight; at most until the cut (:class:`Plan`:
   ``settings.drain_timeout`` less a reserve for the hand-back).
3. **Hand back** at the cut (or once drained, for what began past the targets): :class:`Guard` (the outboxes' ``delivery_guard``,
   :data:`streams.outbox.DeliveryGuard`) cancels the deliveries in flight (a retry's wait
   included) and from then on hands every delivery back at once instead of making it;
   events still undecided are decided (that is quick), so what is left is delivery
   requests, each with its ledger status. The worker then stops (Faust commits).
4. **Write out** (:func:`write_out`): each delivery handed back, and each record still
   above the committed offset of a held partition, is kept for the next start and logged,
   one WARNING line per customer (ids only, never text):

   - on the embedded Tansu broker (memory only), to the JSON Lines file
     ``settings.data_dir / LEFT_FILE``, which the next start replays into the topics
     before its worker starts (:func:`replay_left`) and then deletes; an acknowledgment
     cut while it was being sent (ledger ``sending``: it may have arrived) is not sent
     again but paged to the staff on call, as after a crash;
   - on Apache Kafka (the durable embedded broker or ``OFFHOURS_BROKER_URL``), a delivery
     handed back is produced again to its outbox topic, where the next owner of the
     partition delivers it once (the delivery ledger is in Kafka too), and a dead letter
     says why; a record above the committed offset stays there for the next owner.

Pure parts, tested without a broker: :class:`Plan` (the deadlines, from an injected
clock), :func:`behind` (what is not committed yet), :func:`customer_ids` and
:func:`left_line` (what a log line says), :func:`left_entry` / :func:`entry_record` (the
file's lines), :func:`replayed` (what the next start puts back).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from brokers.client import client_options
from records.wire import AckRequest, DeadLetter
from responders.base import utc_from_epoch
from schedules import Coverage
from streams.app import OffhoursApp
from streams.outbox import failed_ack_page, mode_from, on_call_from
from streams.retention import ledger_status
from streams.settings import Settings
from streams.worker import create_topics

log = logging.getLogger(__name__)

LEFT_FILE = "left-at-stop.jsonl"
"""The file under ``settings.data_dir`` where a stop on the embedded Tansu broker keeps what it left."""
SETTLE_ROUNDS = 3
"""How often the drain reads the outbox topics' ends again once it reached them."""
POLL = 0.2
"""Seconds between two looks at the committed offsets."""
HAND_BACK_RESERVE = 5.0
"""Seconds of ``drain_timeout`` kept for the hand-back (at most a quarter of it)."""
SENDING = "sending"

ROLES = ("events", "actions", "acks", "routes")
"""The topics a stop drains, by role, in the order work flows through them."""


# -- pure parts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """The deadlines of one stop that began at ``start`` (monotonic seconds) with ``timeout``.

    Deliveries may go on until :attr:`cut`; from then on they are handed back, and
    everything (the hand-back included) ends by :attr:`end`.
    """

    start: float
    timeout: float

    @property
    def reserve(self) -> float:
        return min(HAND_BACK_RESERVE, self.timeout / 4)

    @property
    def cut(self) -> float:
        return self.start + self.timeout - self.reserve

    @property
    def end(self) -> float:
        return self.start + self.timeout


def behind(targets: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """How many records of each partition of ``targets`` are not committed yet (only those behind)."""
    gaps = {tp: target - committed.get(tp, 0) for tp, target in targets.items()}
    return {tp: gap for tp, gap in gaps.items() if gap > 0}


def customer_ids(role: str, raw: bytes) -> dict[str, str]:
    """The ids of the customer a record of ``role`` is about (never its text)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    names = {
        "events": ("id", "channel", "account", "conversation"),
        "acks": ("ack_id", "event_id", "channel", "conversation"),
        "routes": ("route_id", "event_id", "channel", "conversation"),
        "actions": ("type", "conversation"),
    }.get(role, ())
    return {name: str(data[name]) for name in names if isinstance(data.get(name), str | int)}


def left_line(role: str, raw: bytes, what: str) -> str:
    """The WARNING line for one customer a stop left: ``what`` became of it, and their ids."""
    ids = " ".join(f"{name}={value}" for name, value in customer_ids(role, raw).items())
    noun = {"events": "event not yet decided", "acks": "acknowledgment not yet delivered",
            "routes": "staff notification not yet delivered", "actions": "staff action not yet applied"}[role]
    return f"stop: {noun} ({ids or 'unreadable record'}): {what}"


@dataclass(frozen=True, slots=True)
class Left:
    """One record a stop did not finish: its role, key, value and headers, why, and (for a
    delivery handed back) its ledger status."""

    role: str
    key: bytes | None
    value: bytes
    reason: str
    headers: tuple[tuple[str, bytes], ...] = ()
    ledger: str | None = None


def left_entry(left: Left) -> bytes:
    """One line of :data:`LEFT_FILE` (JSON; the value as text when it is UTF-8)."""
    entry: dict[str, Any] = {"role": left.role, "reason": left.reason, "ledger": left.ledger}
    entry["key"] = None if left.key is None else left.key.decode("utf-8", "replace")
    try:
        entry["value"] = left.value.decode("utf-8")
    except UnicodeDecodeError:
        entry["value_b64"] = base64.b64encode(left.value).decode()
    entry["headers"] = [[name, base64.b64encode(value).decode()] for name, value in left.headers]
    return orjson.dumps(entry)


def entry_record(line: bytes) -> Left:
    """The record of one line written by :func:`left_entry`."""
    entry = orjson.loads(line)
    value = entry["value"].encode() if "value" in entry else base64.b64decode(entry["value_b64"])
    key = entry.get("key")
    return Left(
        role=entry["role"],
        key=None if key is None else key.encode(),
        value=value,
        reason=entry.get("reason", ""),
        headers=tuple((name, base64.b64decode(data)) for name, data in entry.get("headers", [])),
        ledger=entry.get("ledger"),
    )


# -- the flag the web edge reads ----------------------------------------------------------


class Draining:
    """Set once a stop began: the webhooks refuse with 503 and ``/readyz`` is false."""

    def __init__(self) -> None:
        self.since: float | None = None

    def start(self, now: float) -> None:
        if self.since is None:
            self.since = now

    @property
    def active(self) -> bool:
        return self.since is not None


# -- the outboxes' guard ------------------------------------------------------------------


@dataclass(slots=True)
class Guard:
    """The outboxes' ``delivery_guard``: counts the deliveries in flight; once :meth:`cut`,
    cancels them and hands back every delivery instead of making it (see module doc).

    ``ledger(source, raw)`` is the delivery's ledger status when it was handed back.
    """

    ledger: Callable[[str, bytes], str | None] = lambda source, raw: None
    in_flight: dict[asyncio.Task[Any], tuple[str, bytes]] = field(default_factory=dict)
    handed: list[Left] = field(default_factory=list)
    is_cut: bool = False

    async def __call__(self, source: str, raw: bytes, delivery: Coroutine[Any, Any, Any]) -> Any:
        if self.is_cut:
            delivery.close()
            self._hand_back(source, raw)
            return None
        task = asyncio.ensure_future(delivery)
        self.in_flight[task] = (source, raw)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the agent itself stops: so does its delivery
            task.cancel()
            raise
        finally:
            self.in_flight.pop(task, None)
        if task.cancelled():
            self._hand_back(source, raw)
            return None
        return task.result()

    def cut(self) -> int:
        """Hand back from now on; cancel the deliveries in flight. Returns how many were."""
        self.is_cut = True
        tasks = list(self.in_flight)
        for task in tasks:
            task.cancel()
        return len(tasks)

    def _hand_back(self, source: str, raw: bytes) -> None:
        if any(left.role == source and left.value == raw for left in self.handed):
            return  # the same record again (a redelivery): once is enough
        status = self.ledger(source, raw)
        key = customer_ids(source, raw).get("conversation")
        self.handed.append(Left(source, None if key is None else key.encode(), raw, "handed back", ledger=status))


def ledger_of(app: OffhoursApp) -> Callable[[str, bytes], str | None]:
    """The ledger status of an acknowledgment request (None for a route, or when unknown)."""

    def status(source: str, raw: bytes) -> str | None:
        table = getattr(app, "deliveries", None)
        if source != "acks" or table is None:
            return None
        try:
            value = table.get(AckRequest.from_json(raw).ack_id.encode())
        except Exception:
            return None
        return None if value is None else ledger_status(value)

    return status


# -- the broker side ----------------------------------------------------------------------


def role_topics(settings: Settings) -> dict[str, str]:
    """Topic name by role (:data:`ROLES`)."""
    return {"events": settings.events_topic, "actions": settings.ops.actions_topic,
            "acks": settings.acks_topic, "routes": settings.routes_topic}


class Backlog:
    """The consumer group's committed offsets, the topics' ends and the records between."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Backlog:
        options = client_options(self.settings)
        self._admin = AIOKafkaAdminClient(**options)
        await self._admin.start()
        wait = 25 if self.settings.on_tansu else 200
        self._consumer = AIOKafkaConsumer(**options, enable_auto_commit=False, fetch_max_wait_ms=wait)
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def committed(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offset per partition; never committed: the partition's start."""
        assert self._admin is not None and self._consumer is not None
        tps = list(tps)
        found = await self._admin.list_consumer_group_offsets(self.settings.app_id, partitions=tps)
        result = {tp: meta.offset for tp, meta in found.items() if meta is not None and meta.offset >= 0}
        missing = [tp for tp in tps if tp not in result]
        if missing:
            result.update(await self._consumer.beginning_offsets(missing))
        return result

    async def ends(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        tps = list(tps)
        return dict(await self._consumer.end_offsets(tps)) if tps else {}

    async def records(self, starts: Mapping[TopicPartition, int], deadline: float) -> list[Any]:
        """The records from ``starts`` to each partition's end, read until a fetch comes back
        empty (Tansu may report an end short of a batch's last records)."""
        assert self._consumer is not None
        consumer = self._consumer
        if not starts:
            return []
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        ends = await self.ends(starts)
        found: list[Any] = []
        empty = 0
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found.extend(records)
            reached = all([await consumer.position(tp) >= ends[tp] for tp in starts])
            empty = empty + 1 if not batches and reached else 0
            if empty >= 2:
                break
        return found


# -- the drain ----------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What a stop's drain did."""

    drained: bool = False
    cut_in_flight: int = 0
    held: list[TopicPartition] = field(default_factory=list)
    seconds: float = 0.0


def held_partitions(app: OffhoursApp) -> list[TopicPartition]:
    """The partitions of the drained topics that the worker holds now."""
    topics = set(role_topics(app.settings).values())
    return sorted(
        (TopicPartition(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in topics),
        key=lambda tp: (tp.topic, tp.partition),
    )


async def drain(
    app: OffhoursApp,
    guard: Guard,
    backlog: Backlog,
    plan: Plan,
    *,
    hurry: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Outcome:
    """Steps 2 and 3 of the module doc, for the worker ``app``; ``hurry`` (a second signal)
    moves the cut to now."""
    timers = app.promise_timers
    if timers is not None:
        timers.shutdown()
    held = held_partitions(app)
    outcome = Outcome(held=held)
    events = app.settings.events_topic
    targets = await backlog.ends(held)
    rounds = 0

    async def reached() -> bool:
        nonlocal targets, rounds
        committed = await backlog.committed(held)
        if behind(targets, committed) or guard.in_flight:
            return False
        others = [tp for tp in held if tp.topic != events]
        fresh = await backlog.ends(others)
        grown = {tp: end for tp, end in fresh.items() if end > targets.get(tp, 0)}
        if not grown or rounds >= SETTLE_ROUNDS:
            return True
        rounds += 1
        targets = {**targets, **grown}
        return False

    def hurried() -> bool:
        return hurry is not None and hurry.is_set()

    while clock() < plan.cut and not hurried():
        if await reached():
            outcome.drained = True
            # From here on the worker stops, and Faust waits for every delivery in hand: one
            # begun since (a record past the targets, from another ingest) is handed back.
            outcome.cut_in_flight = guard.cut()
            outcome.seconds = clock() - plan.start
            return outcome
        await sleep(POLL)
    outcome.cut_in_flight = guard.cut()
    log.warning("stop: drain time over (%.1f s): handing back %s deliveries in flight and every delivery not yet made",
                clock() - plan.start, outcome.cut_in_flight)
    rounds = SETTLE_ROUNDS  # what comes after this belongs to the next start
    while clock() < plan.end:
        if await reached():
            break
        await sleep(POLL)
    outcome.seconds = clock() - plan.start
    return outcome


# -- writing out, and the next start's replay ---------------------------------------------


async def leftovers(settings: Settings, held: list[TopicPartition], deadline: float) -> list[Left]:
    """Every record above the group's committed offset on the ``held`` partitions (once the
    worker stopped and committed)."""
    if not held:
        return []
    roles = {topic: role for role, topic in role_topics(settings).items()}
    async with Backlog(settings) as backlog:
        committed = await backlog.committed(held)
        records = await backlog.records(committed, deadline)
    return [
        Left(roles[record.topic], record.key, record.value or b"", "not reached",
             tuple((name, bytes(value)) for name, value in (record.headers or ())))
        for record in records
    ]


@dataclass(slots=True)
class Written:
    """What :func:`write_out` kept for the next start."""

    handed: int = 0
    left: int = 0
    where: str = ""
    customers: list[str] = field(default_factory=list)


async def write_out(
    settings: Settings, handed: list[Left], left: list[Left], *, timeout: float, now: Callable[[], float] = time.time
) -> Written:
    """Step 4 of the module doc; one WARNING line per customer."""
    written = Written(handed=len(handed), left=len(left))
    if not handed and not left:
        return written
    topics = role_topics(settings)
    path = settings.data_dir / LEFT_FILE
    items = [(item, True) for item in handed] + [(item, False) for item in left]
    kept: list[Left] = []
    for item, was_handed in items:
        if settings.on_tansu:
            what = f"kept in {path} for the next start"
        elif was_handed:
            what = f"put back on {topics[item.role]} for the next worker"
        else:
            what = f"left on {topics[item.role]} above the committed offset for the next worker"
        kept.append(_with_reason(item, _reason(item, timeout, what)))
    if settings.on_tansu:
        written.where = str(path)
        append_lines(path, [left_entry(item) for item in kept])
    else:
        written.where = "their topics"
        async with _producer(settings) as producer:
            for item, (_, was_handed) in zip(kept, items, strict=True):
                if not was_handed:
                    continue
                topic = topics[item.role]
                await producer.send_and_wait(topic, item.value, key=item.key)
                letter = DeadLetter.of(item.value, item.reason, topic, utc_from_epoch(now()).isoformat())
                await producer.send_and_wait(settings.dead_letter_topic, letter.to_json(), key=item.key)
    for item in kept:
        line = left_line(item.role, item.value, item.reason)
        written.customers.append(line)
        log.warning("%s", line)
    return written


def _with_reason(item: Left, reason: str) -> Left:
    return Left(item.role, item.key, item.value, reason, item.headers, item.ledger)


def _reason(item: Left, timeout: float, what: str) -> str:
    verb = "deciding" if item.role == "events" else "applying" if item.role == "actions" else "delivering"
    status = f" (ledger: {item.ledger})" if item.ledger else ""
    return f"stopped before {verb} it within OFFHOURS_DRAIN_TIMEOUT={timeout:g} s{status}; {what}"


def append_lines(path: Path, lines: list[bytes]) -> None:
    """Add ``lines`` to ``path`` (created with its folder), through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_bytes() if path.exists() else b""
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(previous + b"".join(line + b"\n" for line in lines))
    temporary.replace(path)


@contextlib.asynccontextmanager
async def _producer(settings: Settings) -> Any:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def replayed(items: list[Left], coverage: Coverage, now: float) -> list[Left]:
    """What the next start puts back on the topics for ``items`` (the lines of :data:`LEFT_FILE`):
    each as it was, but an acknowledgment cut while it was being sent (ledger ``sending``: it
    may have arrived) becomes the page to the staff on call at ``now`` (POSIX seconds), as
    after a crash; without anyone to page it is sent again rather than dropped."""
    on_call, mode_at = on_call_from(lambda: coverage), mode_from(lambda: coverage)
    out = []
    for item in items:
        if item.role == "acks" and item.ledger == SENDING:
            request = AckRequest.from_json(item.value)
            reason = "offhours stopped while sending it, so it may or may not have arrived"
            page = failed_ack_page(request, reason, utc_from_epoch(now), on_call, mode_at)
            if page is not None and page.to:
                item = Left("routes", item.key, page.to_json(), reason)
        out.append(item)
    return out


async def replay_left(settings: Settings, coverage: Coverage, *, now: Callable[[], float] = time.time) -> int:
    """Put what the last stop left (``settings.data_dir / LEFT_FILE``) back on its topics
    (:func:`replayed`), then delete the file; returns how many records."""
    path = settings.data_dir / LEFT_FILE
    if not path.exists():
        return 0
    items = replayed([entry_record(line) for line in path.read_bytes().splitlines() if line.strip()],
                     coverage, now())
    await create_topics(settings)
    topics = role_topics(settings)
    async with _producer(settings) as producer:
        for item in items:
            await producer.send_and_wait(topics[item.role], item.value, key=item.key, headers=list(item.headers) or None)
    path.unlink()
    log.warning("start: put back %s records the last stop left in %s", len(items), path)
    return len(items)
