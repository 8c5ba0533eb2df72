"""The promise timers at scale (issue 20): a sweep's CPU with 10,000 and 100,000 open
conversations, and how late an escalation or a reminder is sent.

Run:  python -m bench.timers [--conversations 10000,100000] [--quick]

Everything runs in this process on the service's own code paths, without Faust or a
broker: the sweep (:func:`streams.sweeps.sweep_promises`, :func:`streams.sweeps.indexed_due`
and the full scan it replaced, :func:`streams.sweeps.scanned_due`) over the two tables
held as dicts (Faust's memory store is a dict of bytes), the due-time index
(:mod:`streams.due_index`) and the real :class:`streams.timers.PromiseTimers`; the
actions topic is a list that notes when each tick was handed to it.

The rows are open conversations of ``examples/coverage.yaml``'s teams as the triage
leaves them: written in the last three days, acknowledged with a reply-by time, most
answered by staff, some still waiting (their reply-by later today), a tenth with a
pending escalation whose chain a staff reply ended; :data:`DUE_SHARE` of them have an
escalation step or a reminder due within the run.

Measured:

- CPU per sweep (``time.process_time``) with nothing due, the index already built,
  at each size, and the ratio 100k / 10k (target: <= 2, the CPU does not grow with
  conversations that have nothing due); the full scan's CPU per sweep beside it;
- CPU of the sweep in which the due share comes due, and of the first sweep after a
  takeover (it evaluates every conversation once: the index is built);
- lateness at the largest size: the worker's first sweep builds the index over the
  quiet conversations; then the due share is written (marked for the next sweep, as the
  agents' writes are) with instants spread over the next seconds of the real clock, a
  sweep registers them, and the timers run with the service's 30 s sweep interval,
  waking at the index's next instant; due instant -> tick handed to the actions topic,
  p50 and max (target: <= 5 s). A row written less than a sweep interval before its
  instant is found by the next periodic sweep instead; the promises' instants are
  minutes after the writes that make them (an escalation's ``after``, a reply-by).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, TextIO

from bench.common import EXAMPLE_COVERAGE, SEED, Target, machine_line
from promises.rules import PendingEscalation, escalation_due
from records.actions import EscalationTick, ReminderTick, decode_action
from schedules import Coverage, load_coverage
from streams.sweeps import due_index_of, indexed_due, scanned_due, sweep_promises
from streams.timers import PromiseTimers
from triage.state import ConversationState

PARTITIONS = 4
EVENTS_TOPIC = "bench-timers-events"
SWEEP_EVERY = timedelta(seconds=30)
"""The service's default sweep interval (``OFFHOURS_SWEEP_INTERVAL``)."""
RETENTION = timedelta(days=14)
DUE_SHARE = 0.02
"""The share of conversations with an escalation step or a reminder due in the run."""
LATE_WANTED = 5.0
RATIO_WANTED = 2.0


def _seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def _quiet_row(rng: random.Random, key: bytes, team: str, now: datetime) -> tuple[ConversationState, PendingEscalation | None]:
    """An open conversation with nothing due for the next hours (answered, or waiting with a later reply-by)."""
    wrote = _seconds(now) - rng.randrange(3 * 86400)
    channel = rng.choice(("facebook", "whatsapp", "instagram", "x"))
    state = ConversationState(
        team=team, customer_at=wrote, waiting_since=wrote, ack_at=wrote, reply_by=wrote + 3600,
        promised="We will answer within the hour", channel=channel, kind="dm", routed_at=wrote,
        routed_to=("marta",), author_name="A customer", text="Il mio ordine non è arrivato", account="acme.it.facebook",
        window_routed=wrote,
    )
    if rng.random() < 0.6:  # answered in time
        state = _with(state, staff_at=wrote + 600)
    else:  # waiting again since recently: the promise is later today
        again = _seconds(now) - rng.randrange(1800)
        state = _with(state, customer_at=again, waiting_since=again, ack_at=again, reply_by=again + 6 * 3600,
                      window_routed=again, routed_at=again)
    pending = None
    if rng.random() < 0.15 and state.staff_at is not None:  # routed, then answered: the chain has ended
        pending = PendingEscalation(event_id=f"fb:m_{key.decode()}", team=team, conversation=key.decode(),
                                    mode="reduced", routed_at=datetime.fromtimestamp(wrote, UTC), routed_to=("marta",),
                                    channel=channel, sent=0)
    return state, pending


def _with(state: ConversationState, **changes: Any) -> ConversationState:
    return ConversationState(**{**{name: getattr(state, name) for name in state.__dataclass_fields__}, **changes})


def _due_row(
    rng: random.Random, key: bytes, team_id: str, coverage: Coverage, due: datetime
) -> tuple[ConversationState, PendingEscalation | None]:
    """A waiting conversation whose escalation step (or, one in three, reply-by reminder) falls due at ``due``."""
    wrote = _seconds(due) - 3600
    state = ConversationState(team=team_id, customer_at=wrote, waiting_since=wrote, ack_at=wrote, reply_by=_seconds(due) + 3600,
                              promised="soon", channel="x", kind="dm", routed_at=wrote, author_name="A customer",
                              text="Can I change the delivery address?", account="acme_us_x")
    if rng.random() < 1 / 3:
        due_at = _seconds(due) + (0 if due.microsecond == 0 else 1)  # whole seconds, not before ``due``
        return _with(state, reply_by=due_at), None
    team = coverage.teams[team_id]
    after = team.escalation.chain_for("reduced").after
    pending = PendingEscalation(event_id=f"fb:m_{key.decode()}", team=team_id, conversation=key.decode(),
                                mode="reduced", routed_at=due - after, routed_to=("marta",), channel="x")
    return state, pending


def tables(
    count: int, now: datetime, coverage: Coverage, due_from: datetime, due_span: float, seed: int = SEED,
    share: float = DUE_SHARE, quiet: bool = True, tables: tuple[dict[bytes, bytes], dict[bytes, bytes]] | None = None,
) -> tuple[dict[bytes, bytes], dict[bytes, bytes], dict[bytes, float]]:
    """``count`` conversations at ``now``: the two tables (``tables`` when given, written into)
    and, for the due ``share``, each key's due instant (POSIX seconds, spread over ``due_span``
    seconds from ``due_from``). ``quiet=False`` writes the due share only."""
    rng = random.Random(seed)
    teams = sorted(coverage.teams)
    conversations, escalations = tables if tables is not None else ({}, {})
    due: dict[bytes, float] = {}
    for n in range(count):
        key = f"fb:PAGE_{n % 50}:PSID_{n}".encode()
        team = teams[n % len(teams)]
        is_due = rng.random() < share
        if not is_due and not quiet:
            continue
        if is_due:
            at = due_from + timedelta(seconds=rng.random() * due_span)
            state, pending = _due_row(rng, key, team, coverage, at)
            due[key] = (float(state.reply_by) if pending is None
                        else escalation_due(pending, coverage.teams[team]).timestamp())  # type: ignore[union-attr]
        else:
            state, pending = _quiet_row(rng, key, team, now)
        conversations[key] = state.to_bytes()
        if pending is not None:
            escalations[key] = pending.to_bytes()
    return conversations, escalations, due


class Recorder:
    """A topic's ``send``: notes each record with the time it was handed over."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.sent.append((time.time(), key, value))


def worker(conversations: dict[bytes, bytes], escalations: dict[bytes, bytes], coverage: Coverage) -> Any:
    """The parts of an app a sweep reads: its tables, settings, coverage, assignment and topics."""
    held = [SimpleNamespace(topic=EVENTS_TOPIC, partition=p) for p in range(PARTITIONS)]
    holder = SimpleNamespace(coverage=coverage, on_swap=lambda listener: None)
    return SimpleNamespace(
        conversations=conversations, escalations=escalations, coverage=holder,
        settings=SimpleNamespace(partitions=PARTITIONS, retention=RETENTION, sweep_interval=SWEEP_EVERY.total_seconds(),
                                 events_topic=EVENTS_TOPIC),
        consumer=SimpleNamespace(assignment=lambda: held),
        stream_topics=SimpleNamespace(actions=Recorder(), routes=Recorder()),
        promise_timers=None, metrics=None,
    )


def _cpu(call: Any) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def sweep_cpu(count: int, coverage: Coverage, sweeps: int, scans: int) -> dict[str, float]:
    """CPU seconds: the building sweep, a sweep with nothing due (median of ``sweeps``), the full
    scan (median of ``scans``), and the sweep in which the due share comes due."""
    built_at = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    due_from = built_at + timedelta(minutes=30)
    conversations, escalations, due = tables(count, built_at, coverage, due_from, 60.0)
    app = worker(conversations, escalations, coverage)
    held = set(range(PARTITIONS))
    build = _cpu(lambda: indexed_due(app, held, built_at))
    quiet = [_cpu(lambda at=built_at + SWEEP_EVERY * (i + 1): indexed_due(app, held, at)) for i in range(sweeps)]
    scan = [_cpu(lambda: scanned_due(app, held, built_at)) for _ in range(scans)]
    work: list[Any] = []
    some = _cpu(lambda: work.append(indexed_due(app, held, due_from + timedelta(seconds=61))))
    found = len(work[0].escalations) + len(work[0].promises)
    return {"build": build, "quiet": statistics.median(quiet), "scan": statistics.median(scan), "some": some,
            "due": float(len(due)), "found": float(found), "indexed": float(len(due_index_of(app)))}


async def lateness(count: int, coverage: Coverage, span: float) -> tuple[list[float], int]:
    """Due instant -> tick handed over, in seconds, for the due share of ``count`` conversations
    whose instants fall in the ``span`` seconds after a short start; and how many due rows."""
    start = datetime.now(UTC)
    conversations, escalations, _ = tables(count, start, coverage, start, span, share=0.0)
    app = worker(conversations, escalations, coverage)

    async def on_sweep(now: datetime) -> None:
        await sweep_promises(app, now)

    async def on_opening(team: Any, opening_at: datetime) -> None:
        return None

    timers = PromiseTimers(coverage, on_opening=on_opening, on_sweep=on_sweep, sweep_every=SWEEP_EVERY)
    app.promise_timers = timers
    timers.start()
    try:
        await sweep_promises(app, datetime.now(UTC))  # the worker's first sweep: the index is built
        # The due share is written now (as the agents write rows, each marked for the next
        # sweep) with instants from 2 s on, and that sweep comes: the index knows them before they are due.
        due_from = datetime.now(UTC) + timedelta(seconds=2)
        _, _, due = tables(count, start, coverage, due_from, span, seed=SEED + 1, quiet=False,
                           tables=(conversations, escalations))
        index = due_index_of(app)
        for key in due:
            index.touch(key)
        await sweep_promises(app, datetime.now(UTC))
        end = due_from.timestamp() + span + 2.0
        while time.time() < end:
            await asyncio.sleep(0.2)
    finally:
        timers.shutdown()
    first: dict[bytes, float] = {}
    for at, key, value in app.stream_topics.actions.sent:
        if key in due and key not in first and isinstance(decode_action(value), EscalationTick | ReminderTick):
            first[key] = at
    late = [first[key] - instant if key in first else float("inf") for key, instant in due.items()]
    return late, len(due)


def run(
    conversations: Sequence[int] = (10_000, 100_000), quick: bool = False, out: TextIO = sys.stdout
) -> list[Target]:
    """Measure, print the markdown section, return issue 20's two timer targets."""
    coverage = load_coverage(EXAMPLE_COVERAGE)
    sizes = sorted(conversations)
    sweeps, scans = (20, 1) if quick else (60, 3)
    cpu = {count: sweep_cpu(count, coverage, sweeps, scans) for count in sizes}
    largest = sizes[-1]
    late, due_count = asyncio.run(lateness(largest, coverage, 6.0 if quick else 15.0))
    print("## Promise timers at scale (`bench/timers.py`)\n", file=out)
    print(machine_line(), file=out)
    print(f"\nOne worker, {PARTITIONS} partitions, sweep interval {SWEEP_EVERY.total_seconds():.0f} s; "
          f"{DUE_SHARE:.0%} of the conversations with an escalation or reminder due.\n", file=out)
    print("| conversations | sweep CPU, nothing due (index) | full scan CPU per sweep | sweep CPU, due share due "
          "| ticks found / due | first sweep after a takeover (build) |", file=out)
    print("|---:|---:|---:|---:|---:|---:|", file=out)
    for count in sizes:
        c = cpu[count]
        print(f"| {count:,} | {c['quiet'] * 1e6:,.0f} µs | {c['scan'] * 1e3:,.0f} ms | {c['some'] * 1e3:,.1f} ms "
              f"| {c['found']:,.0f} / {c['due']:,.0f} | {c['build']:,.2f} s |", file=out)
    finite = sorted(x for x in late if x != float("inf"))
    missed = len(late) - len(finite)
    p50 = statistics.median(finite) if finite else float("inf")
    worst = max(late) if late else float("inf")
    print(f"\nLateness at {largest:,} conversations ({due_count} due over the run): due instant -> tick "
          f"handed to the actions topic, p50 {p50:.3f} s, max {worst:.3f} s" + (f", {missed} never sent" if missed else "")
          + ".\n", file=out)
    small, big = cpu[sizes[0]]["quiet"], cpu[largest]["quiet"]
    ratio = big / small if small > 0 else float("inf")
    return [
        Target(f"escalation/reminder within {LATE_WANTED:.0f} s of due at {largest:,} conversations",
               f"max <= {LATE_WANTED:.0f} s (due -> tick)",
               f"p50 {p50:.3f} s, max {worst:.3f} s over {due_count} due" + (f", {missed} never sent" if missed else ""),
               worst <= LATE_WANTED),
        Target("sweep CPU with nothing due does not grow with conversations",
               f"{largest:,} vs {sizes[0]:,} CPU per sweep <= {RATIO_WANTED:.0f}x",
               f"{big * 1e6:,.0f} µs vs {small * 1e6:,.0f} µs ({ratio:.2f}x); full scan {cpu[largest]['scan'] * 1e3:,.0f} ms",
               ratio <= RATIO_WANTED),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", default="10000,100000", help="comma-separated sizes (default 10000,100000)")
    parser.add_argument("--quick", action="store_true", help="fewer sweeps measured, a shorter lateness run")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.conversations.split(",") if size.strip()]
    if len(sizes) < 2:
        parser.error("--conversations: give two sizes or more (the smallest is the ratio's base)")
    for target in run(sizes, args.quick):
        print(target.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
