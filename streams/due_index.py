"""The sweeps' due-time index: per held partition, when each conversation next needs a look.

Without it every sweep read every row of the ``conversations`` and ``escalations``
tables of the partitions a worker holds, so a sweep's CPU and the lateness of an
escalation grew with the backlog, even with nothing due. With it a sweep
(:func:`streams.sweeps.sweep_promises`) looks only at the conversations whose instant
has come, or whose rows changed since the last sweep, and asks the very same rules
about them; a conversation with nothing due costs nothing until its instant.

What the index holds, per partition: two heaps of ``(instant, key)`` and, per key, its
live instant (two small objects per conversation). The timers wake for the first heap's
instants (a tick's); the second holds the instants that are only a retention expiry,
which the periodic sweep takes, batched into few ``expire`` ticks, not one per wake. The *instant* of a conversation is
the earliest of

- :func:`promises.ticks.next_tick_at`: the next escalation step, follow-through
  reminder, reply-window early route or held-desk release that could be due (pure,
  the same rules the sweep asks, tested so that whenever a rule says "due at t" the
  instant is <= t);
- its retention expiry (:func:`expiry_at`): a retention after its last activity, or
  after the sweep first saw a row with no instant at all (:class:`streams.retention.FirstSight`).

Stale entries are deleted lazily: a popped entry whose instant is no longer the key's
live one is dropped (the heap is rebuilt when
more than half of it is stale). Every key popped is then read again from the tables and
judged by the rules, and put back with its next instant: the index only says *when* to
look, never *what* is due, so a key looked at too early costs one read and nothing else.
A key still due when put back (its tick sent, not applied yet) is marked for the next
sweep, as a full scan would find it again, and is no instant to wake for.

Keeping it current costs the table writers nothing but a set insertion: a write or
delete of either table (the triage and actions agents), and each record of the tables'
changelogs applied to an indexed partition (a recovery still running), mark the key *dirty* (:meth:`DueIndex.touch`),
and the next sweep evaluates the dirty keys of its partitions with its own clock. A
partition the worker takes over (a rebalance, a failover, a start) is *built*: every
key of it marked dirty, from the recovered tables, so the first sweep after the
takeover evaluates them all once and no pending escalation is lost; a partition given
away is *dropped*. A coverage swap marks every key dirty (the teams' chains, claim
limits and hours decide the instants). The Faust glue is :mod:`streams.sweeps`
(:func:`streams.sweeps.keep_due_index`); this module is pure: no I/O, no Faust, the
clock a parameter.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta

from promises.rules import PendingEscalation
from promises.ticks import next_tick_at
from schedules import Team
from streams.retention import FirstSight, conversation_activity
from triage.state import ConversationState

NOW = -math.inf
"""The instant of a key that must be looked at by the next sweep."""

_COMPACT_SLACK = 64


def expiry_at(last: int | float, retention: timedelta) -> int:
    """The first instant (POSIX seconds) at which a conversation last active at ``last`` is
    expired (:func:`streams.retention.expired`: whole seconds, exactly the retention kept)."""
    return math.floor(last + retention.total_seconds()) + 1


def conversation_due(
    key: bytes,
    state: ConversationState | None,
    pending: bytes | None,
    teams: Mapping[str, Team],
    retention: timedelta,
    now: datetime,
    first_sight: FirstSight | None = None,
) -> float | None:
    """The instant (POSIX seconds) a sweep must next look at conversation ``key``; None: never
    until one of its rows changes (no row left).

    ``state`` and ``pending`` are its rows of the two tables (None when absent). The
    earliest of :func:`promises.ticks.next_tick_at` and the retention expiry; a
    conversation with no instant at all expires a retention after ``first_sight`` saw it,
    and is due at once when it was not seen yet (the sweep then notes it).
    """
    tick, expiry = conversation_instants(key, state, pending, teams, retention, now, first_sight)
    return expiry if tick is None else min(tick, expiry) if expiry is not None else tick


def conversation_instants(
    key: bytes,
    state: ConversationState | None,
    pending: bytes | None,
    teams: Mapping[str, Team],
    retention: timedelta,
    now: datetime,
    first_sight: FirstSight | None = None,
) -> tuple[float | None, float | None]:
    """:func:`conversation_due` in two: the next tick's instant (None: none) and the expiry's
    (None only without rows). The sweep wakes the timers for the first, never for the
    second: expiries wait for the periodic sweep, which posts them in batches."""
    if state is None and pending is None:
        return None, None
    decoded = None if pending is None else PendingEscalation.from_bytes(pending)
    last = conversation_activity(state, pending)
    if last is None:
        first = None if first_sight is None else first_sight.seen.get(key)
        expiry = NOW if first is None else float(expiry_at(first, retention))
    else:
        expiry = float(expiry_at(last, retention))
    tick = next_tick_at(key.decode("utf-8", "replace"), state, decoded, teams, now)
    return None if tick is None else tick.timestamp(), expiry


class DueIndex:
    """The instants at which a sweep must look at each conversation, per held partition.

    ``partition_of(key)`` says which partition a key's rows live in (the producers'
    partitioner). Only built partitions (:meth:`build`) are indexed; a key of another
    partition is ignored (its partition is built from the tables when taken over).
    """

    def __init__(self, partition_of: Callable[[bytes], int]) -> None:
        self._partition_of = partition_of
        self._heaps: dict[int, list[tuple[float, bytes]]] = {}
        self._quiet: dict[int, list[tuple[float, bytes]]] = {}
        self._live: dict[int, dict[bytes, float]] = {}
        self._dirty: set[bytes] = set()
        self._again: set[bytes] = set()

    # -- what the table writers call ------------------------------------------------

    def touch(self, key: bytes) -> None:
        """``key``'s rows changed (written, deleted, recovered): the next sweep looks at it."""
        self._dirty.add(key)

    def touch_all(self) -> None:
        """Every indexed key must be looked at again (the coverage changed)."""
        for live in self._live.values():
            self._dirty.update(live)

    # -- partitions ------------------------------------------------------------------

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions indexed."""
        return frozenset(self._heaps)

    def build(self, partition: int, keys: Iterable[bytes]) -> None:
        """Index ``partition`` anew: every one of ``keys`` (its rows in the tables) is looked at by the next sweep."""
        self._heaps[partition] = []
        self._quiet[partition] = []
        self._live[partition] = {}
        self._dirty.update(keys)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget ``partitions`` (given away)."""
        for partition in partitions:
            self._heaps.pop(partition, None)
            self._quiet.pop(partition, None)
            self._live.pop(partition, None)

    # -- what the sweep calls --------------------------------------------------------

    def pop_due(self, held: Collection[int], now: float, limit: int | None = None, again: bool = True) -> list[bytes]:
        """The keys of ``held`` partitions to look at ``now``: dirty or due (instant <= ``now``),
        at most ``limit`` of them (the rest stay for the next call). ``again``: with the keys
        still due when last put back (a sweep's first call; its further calls leave them for
        the next sweep, so a sweep in several calls looks at each once).

        They leave the index; put each back with :meth:`put` once judged. Dirty keys of
        partitions not indexed are forgotten.
        """
        most = math.inf if limit is None else limit
        if again:
            self.settle()
        found: dict[bytes, None] = {}
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            for key in dirty:
                partition = self._partition_of(key)
                live = self._live.get(partition)
                if live is None:
                    continue
                if partition in held and len(found) < most:
                    live.pop(key, None)
                    found[key] = None
                else:
                    self._dirty.add(key)
        for partition in held:
            live = self._live.get(partition)
            if live is None:
                continue
            for heap in (self._heaps[partition], self._quiet[partition]):
                while heap and heap[0][0] <= now and len(found) < most:
                    at, key = heapq.heappop(heap)
                    if live.get(key) == at:
                        del live[key]
                        found[key] = None
        return list(found)

    def put(self, key: bytes, at: float | None, now: float, wake: bool = True) -> None:
        """Look at ``key`` again at ``at`` (POSIX seconds; None: not before its rows change).

        A key still due at ``now`` (its tick sent, not applied yet) is looked at by the
        next sweep, like a dirty one: it is no instant to wake for. ``wake=False``: an
        instant :meth:`next_due` does not give (a retention expiry: the periodic sweep
        takes it, batched with the others).
        """
        partition = self._partition_of(key)
        live = self._live.get(partition)
        if live is None:
            return
        if at is None:
            live.pop(key, None)
            return
        if at <= now:
            live.pop(key, None)
            self._again.add(key)
            return
        if live.get(key) == at:
            return
        live[key] = at
        heap = (self._heaps if wake else self._quiet)[partition]
        heapq.heappush(heap, (at, key))
        if len(heap) > 2 * len(live) + _COMPACT_SLACK:
            heap[:] = [(due, k) for due, k in heap if live.get(k) == due]
            heapq.heapify(heap)

    def settle(self) -> None:
        """The keys put back still due are looked at by the next :meth:`pop_due` (a new sweep)."""
        if self._again:
            self._dirty |= self._again
            self._again = set()

    @property
    def dirty(self) -> int:
        """How many keys wait to be looked at because their rows changed (or they are still due)."""
        return len(self._dirty) + len(self._again)

    def next_due(self, held: Collection[int]) -> float | None:
        """The earliest instant to wake for in ``held`` partitions (dirty keys and expiries
        aside); None: none."""
        earliest: float | None = None
        for partition in held:
            heap = self._heaps.get(partition)
            if heap is None:
                continue
            live = self._live[partition]
            while heap and live.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)
            if heap and (earliest is None or heap[0][0] < earliest):
                earliest = heap[0][0]
        return earliest

    def instant_of(self, key: bytes) -> float | None:
        """The instant at which ``key`` will be looked at; None when not indexed (or dirty)."""
        live = self._live.get(self._partition_of(key))
        return None if live is None or key in self._dirty or key in self._again else live.get(key)

    def __len__(self) -> int:
        """How many keys the index holds an instant for."""
        return sum(len(live) for live in self._live.values())

