"""Reconciliation: find input events that have no decision and have them decided.

Why (README: Production on Apache Kafka): faust-streaming can skip events around
rebalances (measured before this pass existed: 6-19 of 600 events lost in 3 of 6
SIGKILL runs; faust-streaming issues 216, 221, 312, 318, 605): its consumer commits an input offset although some event below it never
reached the agent. Whatever the cause, the loss has a precise signature that we can
check from the topics alone:

    an input record whose offset is below the triage group's committed offset, with
    no decision on the decisions topic naming it (header ``offhours-source``).

Faust flushes the producer before it commits, so once an offset is committed every
decision for the records below it is on the decisions topic. Records at or above the
committed offset are not suspicious: their owner will process them (after a
failover, from the committed offset on), so they are left alone.

One exception, seen in the failover test on the embedded broker: Faust skipped a few
records in the middle of a partition without acknowledging them, so the committed
offset stayed below them while the owner went on deciding the records after them. Such
a hole (an undecided record below a decided one of the same partition, above the
committed offset) is re-issued once it is found in :data:`HOLE_PASSES` passes in a row.

Each lost record is re-issued: produced again to the same events partition with the
same key, value and headers, plus ``offhours-origin`` listing the positions it stands
for. The agent then decides it like any event (decisions are idempotent by event id:
the conversation state remembers processed ids), and the decision's
``offhours-source``/``offhours-origin`` headers account for the original too.

:class:`Reconciler` re-issues a record when two passes in a row find it without a
decision (one pass could have missed a decision that was late to show). It keeps, per
input partition, the offset below which everything is decided (the watermark, committed to the consumer group ``<app_id>-reconcile`` so a new
leader resumes from it) and the records above it still waiting for a decision. One
:meth:`Reconciler.run_pass` is one check; the app runs it on the leader as a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from brokers.client import client_options
from brokers.positions import seek_to_beginning, seek_to_end
from records.headers import (
    HEADER_ORIGIN,
    HEADER_SOURCE,
    header_value,
    parse_position,
    position,
    with_header,
)
from streams.settings import Settings

log = logging.getLogger(__name__)

Reissue = Callable[[int, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[None]]
"""``reissue(partition, key, value, headers)``: produce a record to the events topic."""

FETCH_TIMEOUT_MS = 200
MAX_EXTRA_FETCHES = 5
HOLE_PASSES = 3
"""Passes in a row that must find a hole before its record is re-issued."""


@dataclass(slots=True)
class PartitionLedger:
    """What reconciliation knows about one input partition."""

    watermark: int = 0
    """Every record below this offset has a decision."""
    scanned: int = 0
    """The input has been read up to (excluding) this offset."""
    decided: set[int] = field(default_factory=set)
    """Offsets at or above the watermark that have a decision."""
    suspects: dict[int, ConsumerRecord] = field(default_factory=dict)
    """Records found without a decision by the last pass, by offset."""
    waiting: dict[int, ConsumerRecord] = field(default_factory=dict)
    """Re-issued records still without a decision, by offset."""
    holes: dict[int, int] = field(default_factory=dict)
    """Records above the committed offset passed by later decisions: passes seen, by offset."""


def origins_of(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None) -> list[tuple[int, int]]:
    """The positions a record stands for: its ``offhours-origin`` list (may be empty)."""
    raw = header_value(headers, HEADER_ORIGIN)
    if not raw:
        return []
    found = []
    for part in raw.split(b","):
        parsed = parse_position(part)
        if parsed is not None:
            found.append(parsed)
    return found


async def group_committed(admin: AIOKafkaAdminClient, settings: Settings) -> dict[int, int]:
    """The triage group's committed offset per events partition; a partition never committed is absent."""
    tps = [TopicPartition(settings.events_topic, p) for p in range(settings.partitions)]
    offsets = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}


class Reconciler:
    """Finds committed-but-undecided input records and re-issues them (see module doc)."""

    def __init__(self, settings: Settings, reissue: Reissue) -> None:
        self.settings = settings
        self._reissue = reissue
        self._watermark_group = f"{settings.app_id}-reconcile"
        self._ledgers: dict[int, PartitionLedger] = {}
        self._input: AIOKafkaConsumer | None = None
        self._decisions: AIOKafkaConsumer | None = None
        self._watermarks: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self.reissued_total = 0

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(**client_options(self.settings))
        await self._admin.start()
        self._input = AIOKafkaConsumer(**client_options(self.settings), enable_auto_commit=False)
        self._decisions = AIOKafkaConsumer(**client_options(self.settings), enable_auto_commit=False)
        self._watermarks = AIOKafkaConsumer(
            **client_options(self.settings), group_id=self._watermark_group, enable_auto_commit=False
        )
        for consumer in (self._input, self._decisions, self._watermarks):
            await consumer.start()
        input_tps = self._tps(self.settings.events_topic)
        decision_tps = self._tps(self.settings.decisions_topic)
        self._input.assign(input_tps)
        self._decisions.assign(decision_tps)
        self._watermarks.assign(input_tps)
        for tp in input_tps:
            committed = await self._committed(self._watermarks, tp)
            ledger = PartitionLedger(watermark=committed, scanned=committed)
            self._ledgers[tp.partition] = ledger
            self._input.seek(tp, committed)
        await self._seek_decisions(decision_tps)
        self._rest()

    def _rest(self) -> None:
        """Stop the consumers' background fetching until the next pass (:meth:`_work`).

        An assigned aiokafka consumer keeps a fetch parked at the broker for every
        partition it holds, between passes too: three consumers asked the broker about
        twice a second each with nothing to do, and read every new event and decision
        twice (the pass reads them again from its own positions). Paused, they fetch
        nothing; the watermarks consumer only commits and reads committed offsets, so it
        never fetches at all.
        """
        for consumer in (self._input, self._decisions, self._watermarks):
            if consumer is not None:
                consumer.pause(*consumer.assignment())

    def _work(self) -> None:
        """Let the input and decisions consumers fetch again, for one pass."""
        for consumer in (self._input, self._decisions):
            if consumer is not None:
                consumer.resume(*consumer.assignment())

    async def stop(self) -> None:
        """Close every client, each even when another fails to close (a broker gone)."""
        clients = [c.stop for c in (self._input, self._decisions, self._watermarks) if c is not None]
        if self._admin is not None:
            clients.append(self._admin.close)
        self._input = self._decisions = self._watermarks = None
        self._admin = None
        failures = [r for r in await asyncio.gather(*(close() for close in clients), return_exceptions=True) if r is not None]
        if failures:
            raise failures[0]

    def _tps(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in range(self.settings.partitions)]

    async def _committed(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        try:
            offset = await consumer.committed(tp)
        except Exception as exc:  # a broker without offset storage: start from the beginning
            log.warning("reconcile: cannot read the watermark of %s: %s", tp, exc)
            return 0
        return int(offset or 0)

    async def _seek_decisions(self, decision_tps: list[TopicPartition]) -> None:
        # A decision is written after its input, so decisions older than the oldest
        # unreconciled input cannot matter; with no watermark yet, read everything.
        assert self._input is not None and self._decisions is not None
        oldest: int | None = None
        for partition, ledger in self._ledgers.items():
            if ledger.watermark == 0:
                oldest = None
                break
            tp = TopicPartition(self.settings.events_topic, partition)
            self._input.seek(tp, ledger.watermark)
            batch = await self._input.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
            self._input.seek(tp, ledger.watermark)
            for record in batch.get(tp, []):
                oldest = record.timestamp if oldest is None else min(oldest, record.timestamp)
        if oldest is None:
            await seek_to_beginning(self._decisions, *decision_tps)
            return
        margin_ms = 60_000  # producers' clocks may differ a little
        try:
            found = await self._decisions.offsets_for_times({tp: oldest - margin_ms for tp in decision_tps})
        except Exception as exc:
            log.warning("reconcile: offsets_for_times unsupported (%s); reading all decisions", exc)
            await seek_to_beginning(self._decisions, *decision_tps)
            return
        for tp in decision_tps:
            hit = found.get(tp)
            if hit is None:
                await seek_to_end(self._decisions, tp)
            else:
                self._decisions.seek(tp, hit.offset)

    async def _read_until(
        self, consumer: AIOKafkaConsumer, stops: dict[TopicPartition, int], handle: Callable[[ConsumerRecord], None]
    ) -> None:
        """Hand every record below ``stops[tp]`` to ``handle``."""
        pending = {tp: stop for tp, stop in stops.items() if await consumer.position(tp) < stop}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=FETCH_TIMEOUT_MS)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < pending.get(tp, 0):
                        handle(record)
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]

    async def _read_to_end(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], handle: Callable[[ConsumerRecord], None]
    ) -> None:
        """Hand every record up to the current end of ``tps`` to ``handle``.

        Tansu reports a partition's end (high watermark) as the base offset of its last
        batch plus one, short of the batch's other records; so after the reported end
        the read goes on until a fetch comes back empty (or a few fetches more, on a
        busy topic: what is not read now is read by the next pass, nothing is skipped).
        """
        ends = await consumer.end_offsets(tps)
        extra_fetches = 0
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=FETCH_TIMEOUT_MS)
            for records in batches.values():
                for record in records:
                    handle(record)
            if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                extra_fetches += 1
                if not any(batches.values()) or extra_fetches > MAX_EXTRA_FETCHES:
                    return

    def _on_decision(self, record: ConsumerRecord) -> None:
        positions = origins_of(record.headers)
        source = parse_position(header_value(record.headers, HEADER_SOURCE))
        if source is not None:
            positions.append(source)
        for partition, offset in positions:
            ledger = self._ledgers.get(partition)
            if ledger is not None and offset >= ledger.watermark:
                ledger.decided.add(offset)

    async def run_pass(self) -> int:
        """One check over all input partitions; returns how many records it re-issued."""
        assert self._input is not None and self._decisions is not None
        self._work()
        try:
            return await self._pass()
        finally:
            self._rest()

    async def _pass(self) -> int:
        assert self._input is not None and self._decisions is not None
        # Committed offsets first, then the decisions up to their current end: every
        # decision flushed before those commits is then below the end we read.
        assert self._admin is not None
        committed = await group_committed(self._admin, self.settings)
        await self._read_to_end(self._decisions, self._tps(self.settings.decisions_topic), self._on_decision)

        lost: list[ConsumerRecord] = []
        for partition, ledger in self._ledgers.items():
            target = committed.get(partition, 0)
            tp = TopicPartition(self.settings.events_topic, partition)
            fresh: list[ConsumerRecord] = []
            if target > ledger.scanned:
                self._input.seek(tp, ledger.scanned)
                await self._read_until(self._input, {tp: target}, fresh.append)
                ledger.scanned = target
            # A record is lost only when two passes in a row find no decision for it: a
            # fetch that times out under load, or a decision batch the broker does not
            # show yet, must not make a live record look lost.
            lost.extend(r for o, r in ledger.suspects.items() if o not in ledger.decided)
            ledger.suspects = {r.offset: r for r in fresh if r.offset not in ledger.decided}
            for offset in [o for o in ledger.waiting if o in ledger.decided]:
                del ledger.waiting[offset]

        lost.extend(await self._holes(committed))
        for record in lost:
            ledger = self._ledgers[record.partition]
            here = position(record.partition, record.offset)
            earlier = header_value(record.headers, HEADER_ORIGIN)
            origin = f"{earlier.decode()},{here}" if earlier else here
            headers = with_header(list(record.headers or ()), HEADER_ORIGIN, origin)
            await self._reissue(record.partition, record.key, record.value, headers)
            ledger.waiting[record.offset] = record
            log.warning("reconcile: input %s had no decision; re-issued", here)
        self.reissued_total += len(lost)
        await self._advance_watermarks()
        return len(lost)

    async def _holes(self, committed: dict[int, int]) -> list[ConsumerRecord]:
        """Records above the committed offset that the partition's later decisions passed.

        The owner decides a partition's records in order, so an undecided record below a
        decided one was skipped; when Faust skips it without acknowledging it, the
        committed offset stays below it and the check above never sees it. One found in
        :data:`HOLE_PASSES` passes in a row is returned (once) to be re-issued.
        """
        assert self._input is not None
        found: list[ConsumerRecord] = []
        for partition, ledger in self._ledgers.items():
            above = max(committed.get(partition, 0), ledger.scanned)
            passed = max(ledger.decided, default=-1)
            if passed <= above:
                ledger.holes.clear()
                continue
            tp = TopicPartition(self.settings.events_topic, partition)
            records: list[ConsumerRecord] = []
            self._input.seek(tp, above)
            await self._read_until(self._input, {tp: passed}, records.append)
            self._input.seek(tp, ledger.scanned)
            holes = {r.offset: r for r in records if r.offset not in ledger.decided and r.offset not in ledger.waiting}
            ledger.holes = {offset: ledger.holes.get(offset, 0) + 1 for offset in holes}
            for offset, seen in ledger.holes.items():
                if seen >= HOLE_PASSES:
                    found.append(holes[offset])
        return found

    async def _advance_watermarks(self) -> None:
        assert self._watermarks is not None
        commits: dict[TopicPartition, int] = {}
        for partition, ledger in self._ledgers.items():
            # Re-issued holes wait above the scanned offset: the watermark never passes it.
            new = min([*ledger.waiting, *ledger.suspects, ledger.scanned])
            if new > ledger.watermark:
                ledger.watermark = new
                ledger.decided = {o for o in ledger.decided if o >= new}
                commits[TopicPartition(self.settings.events_topic, partition)] = new
        if commits:
            try:
                await self._watermarks.commit(commits)
            except Exception as exc:  # the in-memory watermark still holds for this leader
                log.warning("reconcile: cannot store the watermark: %s", exc)
