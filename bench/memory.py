"""Memory of the running worker (issue 20): bytes per open conversation, and after the retention.

Run:  python -m bench.memory [--conversations N] [--stores memory,rocksdb] [--retention S] [--trace] [--quick]

Unlike :mod:`bench.state` (a dict of values in this process), this measures the worker
process as deployed, on one embedded Tansu broker, with the worker's delivery off
(``OFFHOURS_RESPONDERS__DELIVER=false``: the bench has no platform tokens; triage, the
tables, the outboxes' records, reconciliation, the watchdog and the promise sweep run).

**Per open conversation** (``python -m streams.worker`` with the bench environment, once
per store: ``memory://`` is what ``offhours run`` and the compose file use, ``rocksdb://``
what the Kubernetes workers use): a warm-up of :data:`WARM_UP` new conversations, then
``N`` more, each one new customer message (realistic payloads of the example coverage's
accounts, channels and kinds, spread over a week). The decisions topic is counted
until every event is decided; the worker's ``VmRSS`` is read once it is steady (two
readings 1 s apart within 256 KiB) after the warm-up and after the ``N``. Bytes per
conversation = RSS growth / ``N``. CPython rarely returns freed memory to the system,
so this is an upper bound on what the conversations hold (it includes the allocator's
arenas the load grew), and it cannot be made smaller by freeing afterwards.

**Where it goes** (``--trace``): the same worker started through :func:`traced_child`,
which runs ``tracemalloc`` (one frame) and, on signals from this process, collects
garbage and takes a snapshot after the warm-up and after the ``N``; the top lines of the
difference are printed. tracemalloc slows the worker and costs memory itself, so its
RSS is not reported.

**After the retention** (a second worker, composed as ``python -m streams.worker``
composes it, :func:`streams.worker.running_worker`, but on a fast clock as
:mod:`bench.soak` does: ``--retention`` wall seconds are its 2-day retention, the promise
sweep every 2 s). Its coverage is one always-closed team answering the example accounts,
so every conversation is acknowledged and records no future promise. Two rounds of
``N`` conversations each: a message per conversation, and for every second one a staff
``agent_reply`` (answered); the others stay idle. After each round's decisions, the RSS;
then the expiry is observed, not waited for: this process counts the tombstones on the
``conversations`` changelog until there is one per conversation sent so far, and reads
the RSS again. "Flat" is judged honestly for an allocator that keeps what it grew: the
second round, arriving after the first expired, must not grow the RSS by more than a
quarter of what the first round grew it (what expiry freed is reused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import (
    EXAMPLE_COVERAGE,
    PREFIX_OF_CHANNEL,
    ROOT,
    SEED,
    TEXTS,
    WEEK_START,
    Target,
    channel_of,
    example_accounts,
    machine_line,
    mib,
    run_settings,
    status_kib,
    stop_child,
    targets_table,
    worker_env,
    write_closed_coverage,
)

TARGET_BYTES = 1024
WARM_UP = 2_000
READY_TIMEOUT = 120.0
DECIDE_TIMEOUT = 600.0
FAST_RETENTION = timedelta(days=2)
TRACE_ENV = "BENCH_MEMORY_TRACE"
"""Where :func:`traced_child` writes the snapshot difference (a path), when set."""
FLAT_SHARE = 0.25
EXACT_ENV = "BENCH_MEMORY_EXACT_BYTES"
"""When set, :func:`traced_child` makes every ``orjson.dumps`` result exact-sized (:func:`exact_dumps`)."""


def install_exact_dumps() -> None:
    """Replace ``orjson.dumps`` in this process by :func:`exact_dumps` (the bench's stand-in for the fix).

    orjson 3.13 hands back a ``bytes`` whose allocation is the 4 KiB (or more) buffer it
    wrote into, whatever the length: a 300-byte conversation state kept in a table
    holds 4 KiB. Every module calls ``orjson.dumps`` through the module attribute, so
    this reaches every value the worker keeps. The fix itself belongs where the values
    are made (``ConversationState.to_bytes``, ``PendingEscalation.to_bytes``, ...).
    """
    import orjson as module

    plain = module.dumps

    def exact_dumps(*args: object, **kwargs: object) -> bytes:
        return memoryview(plain(*args, **kwargs)).tobytes()

    module.dumps = exact_dumps  # type: ignore[assignment]


# -- the events -----------------------------------------------------------------------------


def new_conversations(count: int, first: int, at: Sequence[dt.datetime] | None = None,
                      seed: int = SEED) -> list[tuple[bytes, bytes, dict[str, object]]]:
    """``count`` new conversations (numbered from ``first``), one customer message each.

    Like :func:`bench.common.event_mix`'s new conversations: an example account, its
    channel, a direct message, comment or mention, a text of the mix; ``at`` gives each
    message's time (default: spread over the week from ``WEEK_START``).
    """
    rng = random.Random(seed + first)
    accounts = example_accounts()
    out = []
    for i in range(count):
        n = first + i
        account = rng.choice(accounts)
        channel = channel_of(account)
        prefix = PREFIX_OF_CHANNEL.get(channel, "gen")
        when = at[i] if at is not None else WEEK_START + dt.timedelta(seconds=rng.randrange(7 * 24 * 3600))
        event: dict[str, object] = {
            "id": f"{prefix}:m_{n}",
            "account": account,
            "channel": channel,
            "kind": rng.choices(("dm", "comment", "mention"), weights=(70, 18, 12))[0],
            "conversation": f"{prefix}:{account}:user_{n}",
            "author": {"id": f"user_{n}", "name": f"Customer {n}", "followers": rng.randrange(50_000)},
            "text": rng.choice(TEXTS),
            "lang": None,
            "at": when.isoformat().replace("+00:00", "Z"),
            "in_reply_to": None,
        }
        out.append((str(event["conversation"]).encode(), orjson.dumps(event), event))
    return out


def staff_reply(event: dict[str, object], at: dt.datetime) -> tuple[bytes, bytes]:
    """A staff member's reply in ``event``'s conversation (the conversation is answered)."""
    reply = dict(event, id=f"{event['id']}-reply", kind="agent_reply", text="Eccoci, ci pensiamo noi.",
                 author={"id": "staff_1", "name": "Marta Rossi"}, at=at.isoformat().replace("+00:00", "Z"))
    return str(event["conversation"]).encode(), orjson.dumps(reply)


async def send_all(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.send(topic, key=key, value=value) for key, value in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass
class Tally:
    """Counts the records of one topic as they come (``tombstones``: only records without a value)."""

    bootstrap: str
    topic: str
    tombstones: bool = False
    count: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, fetch_max_wait_ms=50, metadata_max_age_ms=500)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    self.count += sum(1 for r in records if not self.tombstones or r.value is None)
                if batches:
                    self.changed.set()
        finally:
            await consumer.stop()

    async def reach(self, wanted: int, timeout: float, process: asyncio.subprocess.Process | None = None) -> None:
        """Wait until :attr:`count` is at least ``wanted`` (the worker exiting is an error)."""
        deadline = time.monotonic() + timeout
        while self.count < wanted:
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"the worker exited ({process.returncode}) at {self.count} of {wanted} on {self.topic}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.count} of {wanted} records on {self.topic} after {timeout:.0f} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


async def steady_rss(pid: int, *, within_kib: int = 256, limit: float = 20.0) -> int | None:
    """``VmRSS`` of ``pid`` once two readings 1 s apart differ by at most ``within_kib`` (or after ``limit`` s)."""
    last = status_kib("VmRSS", pid)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = status_kib("VmRSS", pid)
        if now is None or last is None or abs(now - last) <= within_kib:
            return now
        last = now
    return last


# -- the traced worker ----------------------------------------------------------------------


def install_trace() -> None:
    """tracemalloc (one frame) in this process; SIGUSR1 takes the *before* snapshot, SIGUSR2 the
    *after* one and writes the biggest growths to ``$BENCH_MEMORY_TRACE`` (both after a gc)."""
    import tracemalloc

    tracemalloc.start(1)
    held: dict[str, tracemalloc.Snapshot] = {}

    def before(*_: object) -> None:
        gc.collect()
        held["before"] = tracemalloc.take_snapshot()

    def after(*_: object) -> None:
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        path = os.environ.get(TRACE_ENV)
        if path and "before" in held:
            lines = []
            for key in ("lineno", "filename"):
                stats = snapshot.compare_to(held["before"], key)
                lines.append(f"by {key}:")
                lines += [str(stat) for stat in stats[:25]]
                lines.append("")
            total = sum(s.size_diff for s in snapshot.compare_to(held["before"], "filename"))
            lines.append(f"total traced growth: {total} bytes")
            Path(path).write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, before)
    signal.signal(signal.SIGUSR2, after)


def traced_child(argv: Sequence[str]) -> int:
    """``python -m bench.memory --traced MODULE ARGS...``: ``MODULE`` as ``__main__`` under tracemalloc.

    SIGUSR1: collect garbage and take the *before* snapshot; SIGUSR2: collect, take the
    *after* snapshot and write the 25 biggest growths by line, then by file, to
    ``$BENCH_MEMORY_TRACE``.
    """
    import runpy

    if os.environ.get(EXACT_ENV):
        install_exact_dumps()
    if os.environ.get(TRACE_ENV):
        install_trace()
    module, *rest = argv
    sys.argv = [module, *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


# -- part 1: bytes per open conversation ------------------------------------------------------


@dataclass
class PerConversation:
    store: str
    conversations: int
    before_kib: int | None
    after_kib: int | None
    trace: str = ""
    exact: bool = False

    @property
    def bytes_each(self) -> float | None:
        if self.before_kib is None or self.after_kib is None:
            return None
        return (self.after_kib - self.before_kib) * 1024 / self.conversations


async def _lines_until(process: asyncio.subprocess.Process, wanted: str, seen: asyncio.Event) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        if raw.decode(errors="replace").strip() == wanted:
            seen.set()


async def per_conversation(broker_url: str, store: str, conversations: int, trace: bool,
                           exact: bool = False) -> PerConversation:
    """One ``python -m streams.worker`` (``store``), a warm-up, then ``conversations`` new ones."""
    run = f"memory-{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    settings = run_settings(broker_url, run, directory, flavour="tansu", coverage_file=EXAMPLE_COVERAGE, store=store)
    bootstrap = settings.bootstrap_servers[0]
    env = worker_env(settings, dict(os.environ))
    env["OFFHOURS_RESPONDERS__DELIVER"] = "false"
    env["OFFHOURS_DELIVERIES_TOPIC"] = f"bench-{run}.deliveries"
    env["OFFHOURS_OPS__ACTIONS_TOPIC"] = f"bench-{run}.actions"
    command = [sys.executable, "-m"]
    trace_file = directory / "trace.txt"
    if trace:
        env[TRACE_ENV] = str(trace_file)
    if exact:
        env[EXACT_ENV] = "1"
    if trace or exact:
        command += ["bench.memory", "--traced"]
    command.append("streams.worker")
    stderr = (directory / "stderr").open("wb")
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=stderr)
    settled = asyncio.Event()
    everything = ",".join(str(p) for p in range(settings.partitions))
    reader = asyncio.create_task(_lines_until(process, f"ASSIGNED {everything}", settled))
    decisions = Tally(bootstrap, settings.decisions_topic)
    counting = asyncio.create_task(decisions.run())
    try:
        await asyncio.wait_for(settled.wait(), READY_TIMEOUT)
        warm = new_conversations(WARM_UP, 10_000_000)
        await send_all(bootstrap, settings.events_topic, [(k, v) for k, v, _ in warm])
        await decisions.reach(WARM_UP, DECIDE_TIMEOUT, process)
        before = await steady_rss(process.pid)
        if trace:
            process.send_signal(signal.SIGUSR1)
        load = new_conversations(conversations, 0)
        print(f"[memory] {store}: {conversations:,} conversations ...", file=sys.stderr, flush=True)
        await send_all(bootstrap, settings.events_topic, [(k, v) for k, v, _ in load])
        await decisions.reach(WARM_UP + conversations, DECIDE_TIMEOUT, process)
        after = await steady_rss(process.pid)
        if trace:
            process.send_signal(signal.SIGUSR2)
            for _ in range(120):  # the snapshot of a big heap takes a while
                if trace_file.exists():
                    break
                await asyncio.sleep(0.5)
    finally:
        counting.cancel()
        await stop_child(process)
        reader.cancel()
        stderr.close()
    text = trace_file.read_text() if trace_file.exists() else ""
    return PerConversation(store, conversations, before, after, text, exact)


# -- part 2: after the retention ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FastClock:
    """POSIX seconds that run ``speed`` times faster than the wall clock from ``origin_wall``."""

    origin_wall: float
    origin_fast: float
    speed: float

    def __call__(self) -> float:
        return self.origin_fast + (time.time() - self.origin_wall) * self.speed


async def serve_fast(broker_url: str, run: str, coverage_file: Path, clock: FastClock, retention: timedelta) -> None:
    """The retention round's worker: :func:`streams.worker.running_worker` on ``clock``; prints ``READY``."""
    from schedules import load_coverage
    from streams.worker import running_worker

    settings = run_settings(broker_url, run, Path(tempfile.mkdtemp(prefix="bench-memory-")), flavour="tansu",
                            coverage_file=coverage_file, retention=retention,
                            deliveries_topic=f"bench-{run}.deliveries")
    settings = settings.with_overrides(
        ops=settings.ops.model_copy(update={"actions_topic": f"bench-{run}.actions"}),
        responders=settings.responders.model_copy(update={"deliver": False}),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with running_worker(settings, load_coverage(coverage_file), clock=clock,
                              sweep_every=timedelta(seconds=2)) as app:
        print("READY", flush=True)
        while not stopping.is_set():
            print(f"ROWS {len(app.conversations)} {len(app.escalations)}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


@dataclass
class RetentionRound:
    """RSS readings of the retention worker (KiB)."""

    conversations: int
    start: int | None = None
    rounds: list[tuple[int | None, int | None]] = field(default_factory=list)
    """Per round: RSS once its conversations were decided, and once they had expired."""
    left: list[tuple[int, ...]] = field(default_factory=list)
    """Per round: the worker's conversations and escalations rows once the expiry had run."""
    trace: str = ""
    """With ``trace``: tracemalloc's growth from round 1 expired to round 2 expired."""

    def growth(self, n: int) -> int | None:
        """KiB round ``n`` grew the RSS by (from the start, or from the previous round's expiry)."""
        base = self.start if n == 0 else self.rounds[n - 1][1]
        top = self.rounds[n][0]
        return None if base is None or top is None else top - base


async def retention_rounds(broker_url: str, conversations: int, retention_wall: float, rounds: int = 2,
                           exact: bool = False, trace: bool = False) -> RetentionRound:
    run = f"retain-{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    coverage_file = write_closed_coverage(directory, example_accounts())
    clock = FastClock(time.time(), WEEK_START.timestamp(), FAST_RETENTION.total_seconds() / retention_wall)
    bootstrap = broker_url.split("://", 1)[-1]
    command = [sys.executable, "-m", "bench.memory", "--serve-fast", broker_url, run, str(coverage_file),
               repr(clock.origin_wall), repr(clock.origin_fast), repr(clock.speed), repr(FAST_RETENTION.total_seconds())]
    stderr = (directory / "stderr").open("wb")
    env = dict(os.environ, **({EXACT_ENV: "1"} if exact else {}))
    trace_file = directory / "trace.txt"
    if trace:
        env[TRACE_ENV] = str(trace_file)
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=stderr)
    ready = asyncio.Event()
    rows = [-1, -1]

    async def read_lines() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            parts = raw.decode(errors="replace").split()
            if parts[:1] == ["READY"]:
                ready.set()
            elif parts[:1] == ["ROWS"]:
                rows[:] = [int(p) for p in parts[1:3]]

    async def emptied(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while rows != [0, 0] and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # the worker prints its rows every second

    reader = asyncio.create_task(read_lines())
    decisions = Tally(bootstrap, f"bench-{run}.decisions")
    expired = Tally(bootstrap, f"bench-{run}-conversations-changelog", tombstones=True)
    tasks = [asyncio.create_task(decisions.run()), asyncio.create_task(expired.run())]
    result = RetentionRound(conversations)
    try:
        await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
        result.start = await steady_rss(process.pid)
        decided = 0
        for n in range(rounds):
            now = dt.datetime.fromtimestamp(clock(), dt.UTC)
            batch = new_conversations(conversations, n * conversations, at=[now] * conversations)
            print(f"[memory] retention round {n + 1}: {conversations:,} conversations ...", file=sys.stderr, flush=True)
            await send_all(bootstrap, f"bench-{run}.events", [(k, v) for k, v, _ in batch])
            decided += conversations
            await decisions.reach(decided, DECIDE_TIMEOUT, process)
            later = dt.datetime.fromtimestamp(clock(), dt.UTC)
            replies = [staff_reply(event, later) for _, _, event in batch[::2]]
            await send_all(bootstrap, f"bench-{run}.events", replies)
            decided += len(replies)
            await decisions.reach(decided, DECIDE_TIMEOUT, process)
            full = await steady_rss(process.pid)
            await expired.reach((n + 1) * conversations, retention_wall * 4 + 120, process)
            await emptied(retention_wall + 60)
            result.left.append(tuple(rows))
            result.rounds.append((full, await steady_rss(process.pid)))
            if trace and n == 0:
                process.send_signal(signal.SIGUSR1)
        if trace:
            process.send_signal(signal.SIGUSR2)
            for _ in range(120):
                if trace_file.exists():
                    break
                await asyncio.sleep(0.5)
            result.trace = trace_file.read_text() if trace_file.exists() else ""
    finally:
        for task in tasks:
            task.cancel()
        await stop_child(process)
        reader.cancel()
        stderr.close()
    return result


# -- report ---------------------------------------------------------------------------------------


def report(per: list[PerConversation], retained: RetentionRound | None, retention_wall: float) -> tuple[str, list[Target]]:
    lines = [
        "## Memory of the running worker (issue 20)",
        "",
        f"Machine: {machine_line()}. One embedded Tansu broker; `python -m streams.worker` with the bench "
        f"environment, delivery off; {WARM_UP:,} conversations of warm-up, then the measured ones, each a new "
        "customer message; RSS once steady after every one was decided.",
        "",
        "| store | conversations | RSS after warm-up | RSS after | bytes per conversation |",
        "|---|---:|---:|---:|---:|",
    ]
    targets = []
    for p in per:
        each = "n/a" if p.bytes_each is None else f"{p.bytes_each:,.0f}"
        label = p.store + (" (exact-sized orjson values)" if p.exact else "")
        lines.append(f"| {label} | {p.conversations:,} | {mib(p.before_kib)} | {mib(p.after_kib)} | {each} |")
        targets.append(Target(f"RSS per open conversation, running worker ({label})", f"<= {TARGET_BYTES} B",
                              f"{each} B ({p.conversations:,} conversations)",
                              p.bytes_each is not None and p.bytes_each <= TARGET_BYTES))
    for p in per:
        if p.trace:
            lines += ["", f"tracemalloc, {p.store}{' (exact-sized orjson values)' if p.exact else ''}, growth over the {p.conversations:,} conversations "
                          "(after gc):", "", "```", p.trace.rstrip(), "```"]
    if retained is not None:
        lines += [
            "",
            f"After the retention ({retention_wall:g} wall s = 2 days on the worker's fast clock; always-closed "
            f"team; {retained.conversations:,} conversations a round, every second one answered by staff; expiry "
            "observed as tombstones on the conversations changelog):",
            "",
            "| round | RSS before | RSS with the round decided | RSS once it expired | growth | rows left |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for n, (full, gone) in enumerate(retained.rounds):
            base = retained.start if n == 0 else retained.rounds[n - 1][1]
            growth = retained.growth(n)
            lines.append(f"| {n + 1} | {mib(base)} | {mib(full)} | {mib(gone)} | "
                         f"{'n/a' if growth is None else f'{growth / 1024:+,.1f} MiB'} | "
                         f"{retained.left[n] if n < len(retained.left) else 'n/a'} |")
        first, second = (retained.growth(0), retained.growth(1)) if len(retained.rounds) > 1 else (None, None)
        flat = first is not None and second is not None and second <= max(first, 1) * FLAT_SHARE
        measured = ("n/a" if first is None or second is None else
                    f"round 1 {first / 1024:+,.1f} MiB, round 2 after its expiry {second / 1024:+,.1f} MiB")
        if retained.trace:
            lines += ["", "tracemalloc of the retention worker, from round 1 expired to round 2 expired (after gc):",
                      "", "```", retained.trace.rstrip(), "```"]
        targets.append(Target("RSS after the retention", f"flat: a second round after expiry grows RSS by "
                               f"<= {FLAT_SHARE:.0%} of the first", measured, flat))
    lines += ["", targets_table(targets)]
    return "\n".join(lines), targets


async def run(*, conversations: int = 20_000, stores: Sequence[str] = ("memory://", "rocksdb://"),
              retention: float = 30.0, retention_conversations: int | None = None, trace: bool = False,
              exact: bool = False, out=sys.stdout) -> list[Target]:
    """Both parts on one embedded broker; prints the section on ``out``.

    ``exact`` also runs each store with :func:`install_exact_dumps` in the worker (the fix
    the report describes), and the retention rounds with it."""
    from brokers.tansu import EmbeddedBroker

    per: list[PerConversation] = []
    async with EmbeddedBroker() as broker:
        for store in stores:
            per.append(await per_conversation(broker.url, store, conversations, trace=False))
            if trace:
                traced = await per_conversation(broker.url, store, conversations, trace=True)
                per[-1].trace = traced.trace
            if exact:
                per.append(await per_conversation(broker.url, store, conversations, trace=False, exact=True))
                if trace:
                    traced = await per_conversation(broker.url, store, conversations, trace=True, exact=True)
                    per[-1].trace = traced.trace
        retained = None
        if retention > 0:
            retained = await retention_rounds(broker.url, retention_conversations or conversations // 2, retention,
                                              exact=exact, trace=trace)
    text, targets = report(per, retained, retention)
    print(text, file=out, flush=True)
    return targets


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--traced"]:
        return traced_child(argv[1:])
    if argv[:1] == ["--serve-fast"]:
        import uvloop

        if os.environ.get(EXACT_ENV):
            install_exact_dumps()
        if os.environ.get(TRACE_ENV):
            install_trace()
        broker_url, run_id, coverage_file, wall, fast, speed, retention_s = argv[1:]
        uvloop.run(serve_fast(broker_url, run_id, Path(coverage_file), FastClock(float(wall), float(fast), float(speed)),
                              timedelta(seconds=float(retention_s))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=None, help="measured conversations (default 20000; 5000 with --quick)")
    parser.add_argument("--stores", default="memory,rocksdb", help="memory, rocksdb or both (default)")
    parser.add_argument("--retention", type=float, default=30.0, help="wall seconds of retention (0: skip that part)")
    parser.add_argument("--trace", action="store_true", help="also run each store's worker under tracemalloc")
    parser.add_argument("--exact-bytes", action="store_true",
                        help="also run with exact-sized orjson values in the worker (the fix this bench proposes)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    conversations = args.conversations or (5_000 if args.quick else 20_000)
    stores = [f"{s.strip()}://" for s in args.stores.split(",") if s.strip()]
    asyncio.run(run(conversations=conversations, stores=stores, retention=args.retention, trace=args.trace,
                    exact=args.exact_bytes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
