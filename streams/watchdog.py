"""The stalled-partition watchdog: an input partition a live worker holds but no longer reads.

Seen in the failover test (CI, 2026-11-23, on Tansu and on Apache Kafka): after a
clean rebalance, the survivor that took over a partition decided nothing more from
it, with no error logged, while the partition kept records above the last one
decided. Reconciliation cannot see those records (they are above the committed
offset), so each worker watches its own partitions:

    a held events partition whose reported end is beyond the last offset decided,
    and whose last decided offset has not moved for ``after`` seconds.

Such a partition is read again from its committed offset (the start of the partition
when nothing was ever committed): Faust's seek resets both the fetch position and its
own record of what was read. Records decided twice get the same decision (the
conversation state remembers processed ids) and the delivery ledger sends nothing twice.

Causes found (issue 17):

- fixed, :mod:`streams.transport`: during table recovery aiokafka handed Faust the
  records of a paused input partition, which Faust dropped, and a partition nobody had
  committed was never sought back (the stall with ``last decided: None``);
- fixed, :mod:`streams.transport` (``SeekSafeConsumer``): recovery seeks the input
  partitions to their committed offsets while the fetcher is still delivering a batch
  fetched before the seek, so Faust's record of what was read ended above the new
  position, and every record up to it was then skipped ("DROPPED MESSAGE ROFF", logged
  only in Faust's dev log). Seen in the failover rounds (read offset 549 after a seek to
  14); it matches the stall seen on Apache Kafka (``last decided: 57`` with records up
  to 284, committed 58). Records of a partition sought since their fetch are no longer
  handed on, and their read offsets no longer written.

The watchdog stays on every broker as a guard against a stall of a cause not found yet
(it fired in none of the 10 failover rounds run after both fixes, 5 on Tansu and 5 on
Apache Kafka).

:class:`Progress` is the pure part (it takes the clock as a parameter);
:func:`streams.worker.attach_watchdog` runs it on a timer, on every broker: unlike
the Tansu accommodations of :func:`streams.app.faust_options` it is needed on Apache
Kafka too (deploy/README.md, "Settings on Apache Kafka vs the embedded broker", gives
the counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class _Seen:
    decided: int | None
    since: float


@dataclass(slots=True)
class Progress:
    """What one worker decided per input partition, and since when nothing moved."""

    after: float
    """Seconds without progress, with records waiting, before a partition counts as stalled."""
    decided: dict[int, int] = field(default_factory=dict)
    """The last offset decided per partition (written by the triage agent)."""
    _seen: dict[int, _Seen] = field(default_factory=dict)

    def note(self, partition: int, offset: int) -> None:
        """The triage agent decided ``offset`` of ``partition``."""
        self.decided[partition] = offset

    def stalled(self, ends: dict[int, int], now: float) -> list[int]:
        """The held partitions (``ends``: reported end offset of each) that stalled at ``now``.

        A partition is waiting when its end is beyond the last offset decided (any
        end above zero when nothing was decided here). It stalls once it has been
        waiting with the same last decided offset for ``after`` seconds. Partitions no
        longer held are forgotten.
        """
        for partition in list(self._seen):
            if partition not in ends:
                del self._seen[partition]
        stalled = []
        for partition, end in ends.items():
            last = self.decided.get(partition)
            waiting = end > (last + 1 if last is not None else 0)
            seen = self._seen.get(partition)
            if not waiting or seen is None or seen.decided != last:
                self._seen[partition] = _Seen(last, now)
                continue
            if now - seen.since >= self.after:
                stalled.append(partition)
        return stalled

    def restart(self, partition: int, now: float, committed: int | None) -> None:
        """``partition`` is read again from ``committed``: watch it afresh from ``now``.

        With the committed offset known and nothing decided here, the records below it
        count as decided (a previous owner decided them), so an idle partition that
        another worker finished does not stall again and again.
        """
        if committed is not None and committed > 0 and self.decided.get(partition) is None:
            self.decided[partition] = committed - 1
        self._seen[partition] = _Seen(self.decided.get(partition), now)

    def rebalancing(self) -> None:
        """Nothing is read during a rebalance: every wait starts again after it."""
        self._seen.clear()

    def forget(self, partition: int) -> None:
        """``partition`` was revoked: its progress here is no longer meaningful."""
        self.decided.pop(partition, None)
        self._seen.pop(partition, None)
