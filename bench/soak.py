"""Soak: memory of a worker driven through many distinct conversations, before and after
the retention expires them.

Run:  python -m bench.soak [--conversations 40000] [--retention 60] [--rate 300] [--duration 110] [--no-expiry]

One embedded broker, one fake Telegram Bot API (:class:`responders.fakes.FakeTelegram`)
and one worker child (:func:`streams.worker.running_worker`: triage, responders, promise
sweep), all on 127.0.0.1. The coverage is one team that is always closed, answering on
eight Telegram bots, so every message is acknowledged: each conversation leaves a
``conversations`` row and a delivery-ledger entry. Telegram has no reply window, so a
worker that falls behind still delivers every acknowledgment and no conversation gets
an early route; nobody is on call, so no reminder either. This process posts one
private Telegram message per conversation (a distinct chat each, ``--rate`` per second)
on the events topic, and prints every 5 s the worker's rows (as the worker counts them),
the acknowledgments the fake received and the RSS of the worker and of the broker.

The worker runs on a fast clock: ``--retention`` wall seconds are its retention
(``OFFHOURS_RETENTION`` of 2 days), so a conversation expires about ``--retention``
seconds after its message (plus up to one sweep); events carry the fast clock's time.
The sweep runs every ``--sweep`` wall seconds. With ``--no-expiry`` the retention is ten
years: the baseline, what the worker did before expiry existed.

Bounded: at most ``--conversations`` events over at most ``--duration`` seconds, never more
than :data:`MAX_AHEAD` ahead of the acknowledgments (on a busy machine fewer are sent: the
report says how many), and the run ends ``--retention`` + 20 s after the last one at the
latest (sooner once the tables are empty).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    ROOT,
    WEEK_START,
    machine_line,
    mib,
    run_settings,
    status_kib,
    write_closed_coverage,
)

TOKEN = "123456:bench-bot-token"
FAST_RETENTION = timedelta(days=2)
"""The worker's retention on its fast clock (the setting must be longer than a day)."""
NO_EXPIRY = timedelta(days=3650)
SAMPLE_EVERY = 5.0
MAX_AHEAD = 1000
"""The most conversations sent and not yet acknowledged: beyond it the load waits for the worker."""



BOTS = 8
FIRST_CHAT = 7_000_000_000  # private chats have positive ids, beyond 32 bits


def account(n: int) -> str:
    return f"bench.tg.{n}"


@dataclass(frozen=True, slots=True)
class FastClock:
    """POSIX seconds that run ``speed`` times faster than the wall clock from ``origin_wall``."""

    origin_wall: float
    origin_fast: float
    speed: float

    def __call__(self) -> float:
        return self.origin_fast + (time.time() - self.origin_wall) * self.speed


# -- the worker child --------------------------------------------------------------------


async def serve(broker_url: str, run: str, coverage_file: Path, platform_url: str, clock: FastClock,
                sweep: float, retention: timedelta) -> None:
    """One worker on ``clock``; prints ``READY``, then ``STATS conversations escalations ledger`` every second."""
    from responders.config import AccountCredentials, ResponderSettings
    from schedules import load_coverage
    from streams.worker import running_worker

    responders = ResponderSettings(
        telegram_base_url=platform_url,
        accounts={account(n): AccountCredentials(access_token=TOKEN) for n in range(BOTS)},
    )
    if "egress_allow" in ResponderSettings.model_fields:  # the fake listens on loopback
        responders = responders.model_copy(update={"egress_allow": ("127.0.0.1",)})
    settings = run_settings(broker_url, run, Path(tempfile.mkdtemp(prefix="bench-soak-")), flavour="tansu",
                            coverage_file=coverage_file, responders=responders, retention=retention,
                            deliveries_topic=f"bench-{run}.deliveries")
    settings = settings.with_overrides(ops=settings.ops.model_copy(update={"actions_topic": f"bench-{run}.actions"}))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with running_worker(settings, load_coverage(coverage_file), reconcile=False, clock=clock,
                              sweep_every=timedelta(seconds=sweep)) as app:
        print("READY", flush=True)
        while not stopping.is_set():
            print(f"STATS {len(app.conversations)} {len(app.escalations)} {len(app.deliveries)}", flush=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


# -- this process: load, fake platform, readings -----------------------------------------


@dataclass
class Sample:
    seconds: float
    sent: int
    acks: int
    conversations: int
    ledger: int
    worker_kib: int | None
    broker_kib: int | None


def chat_id(n: int) -> int:
    return FIRST_CHAT + n


def telegram_event(n: int, at: datetime) -> tuple[bytes, bytes]:
    """Message 1 of a new private chat ``chat_id(n)`` with bot ``n % BOTS``: a new conversation."""
    bot = n % BOTS
    conversation = f"tg:bench_bot_{bot}:{chat_id(n)}"
    event = {
        "id": f"tg:{chat_id(n)}:1",
        "account": account(bot),
        "channel": "telegram",
        "kind": "dm",
        "conversation": conversation,
        "author": {"id": str(chat_id(n)), "name": f"Customer {n}", "followers": n % 5000},
        "text": "Il mio ordine non è arrivato, potete aiutarmi?",
        "lang": "it",
        "at": at.isoformat(),
        "in_reply_to": None,
    }
    return conversation.encode(), orjson.dumps(event)


async def soak(conversations: int, retention_wall: float, rate: float, sweep: float, expiry: bool,
               duration: float) -> list[Sample]:
    from brokers.tansu import EmbeddedBroker
    from responders.fakes import FakeTelegram

    run = f"soak-{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    coverage_file = write_closed_coverage(directory, [account(n) for n in range(BOTS)])
    clock = FastClock(time.time(), WEEK_START.timestamp(), FAST_RETENTION.total_seconds() / retention_wall)
    retention = FAST_RETENTION if expiry else NO_EXPIRY
    samples: list[Sample] = []
    async with EmbeddedBroker() as broker, FakeTelegram({TOKEN}) as platform:
        broker_pid = broker._process.pid if broker._process is not None else None
        stderr = (directory / "worker.stderr").open("wb")
        command = [sys.executable, "-m", "bench.soak", "--serve", broker.url, run, str(coverage_file), platform.url,
                   repr(clock.origin_wall), repr(clock.origin_fast), repr(clock.speed), repr(sweep),
                   repr(retention.total_seconds())]
        process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=stderr)
        rows = [0, 0, 0]
        ready = asyncio.Event()

        async def read_stats() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                parts = line.decode().split()
                if parts[:1] == ["READY"]:
                    ready.set()
                elif parts[:1] == ["STATS"]:
                    rows[:] = [int(p) for p in parts[1:4]]

        reader = asyncio.create_task(read_stats())
        sent = 0
        started = time.monotonic()

        def sample() -> Sample:
            reading = Sample(time.monotonic() - started, sent, len(platform.requests), rows[0], rows[2],
                             status_kib("VmRSS", process.pid), status_kib("VmRSS", broker_pid) if broker_pid else None)
            samples.append(reading)
            print(f"[soak] {reading.seconds:5.0f} s  sent {reading.sent:>6,}  acks {reading.acks:>6,}  "
                  f"rows {reading.conversations:>6,}  ledger {reading.ledger:>6,}  worker {mib(reading.worker_kib)}  "
                  f"broker {mib(reading.broker_kib)}", file=sys.stderr, flush=True)
            return reading

        async def sampler() -> None:
            while True:
                sample()
                await asyncio.sleep(SAMPLE_EVERY)

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
        try:
            await asyncio.wait_for(ready.wait(), 120)
            await producer.start()
            started = time.monotonic()
            sampling = asyncio.create_task(sampler())
            topic = f"bench-{run}.events"
            wall_started = time.monotonic()
            for n in range(conversations):
                if time.monotonic() - wall_started > duration:
                    break
                due = wall_started + n / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                while n - len(platform.requests) >= MAX_AHEAD and time.monotonic() - wall_started <= duration:
                    # The worker is behind (a busy machine): wait rather than let the backlog
                    # outgrow the acknowledgments' reply window.
                    await asyncio.sleep(0.05)
                now = datetime.fromtimestamp(clock(), UTC)
                platform.add_message(chat_id(n), 1)
                key, value = telegram_event(n, now)
                await producer.send(topic, key=key, value=value)
                sent = n + 1
            await producer.flush()
            last = time.monotonic()
            while time.monotonic() < last + retention_wall + 20:
                if expiry and rows[0] == 0 and rows[2] == 0 and len(platform.requests) >= sent:
                    break
                await asyncio.sleep(0.5)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            sample()
        finally:
            await producer.stop()
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            reader.cancel()
            stderr.close()
    return samples


def report(samples: list[Sample], retention_wall: float, rate: float, expiry: bool) -> str:
    conversations = max(samples[-1].sent, 1)
    lines = [
        f"## Soak: {samples[-1].sent:,} distinct conversations at up to {rate:g}/s, retention {retention_wall:g} s"
        + ("" if expiry else " (no expiry: baseline)"),
        "",
        f"Machine: {machine_line()}.",
        "",
        "| s | sent | acks | conversation rows | ledger entries | worker RSS | broker RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in samples:
        lines.append(f"| {s.seconds:.0f} | {s.sent:,} | {s.acks:,} | {s.conversations:,} | {s.ledger:,} | "
                     f"{mib(s.worker_kib)} | {mib(s.broker_kib)} |")
    worker = [s.worker_kib for s in samples if s.worker_kib]
    broker = [s.broker_kib for s in samples if s.broker_kib]
    if worker:
        first, peak, final = worker[0], max(worker), worker[-1]
        lines += ["", f"- worker RSS: {mib(first)} at the start, peak {mib(peak)}, {mib(final)} at the end; "
                      f"peak over start {(peak - first) * 1024 / conversations:,.0f} bytes per conversation sent"]
    if broker:
        lines.append(f"- broker RSS: {mib(broker[0])} at the start, {mib(broker[-1])} at the end "
                     f"({(broker[-1] - broker[0]) * 1024 / conversations:,.0f} bytes per conversation)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        import uvloop

        broker_url, run, coverage_file, platform_url, wall, fast, speed, sweep, retention = argv[1:]
        clock = FastClock(float(wall), float(fast), float(speed))
        uvloop.run(serve(broker_url, run, Path(coverage_file), platform_url, clock, float(sweep),
                         timedelta(seconds=float(retention))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=40_000, help="distinct conversations (default 40000)")
    parser.add_argument("--retention", type=float, default=60.0, help="wall seconds a conversation is kept (default 60)")
    parser.add_argument("--rate", type=float, default=300.0, help="conversations per second (default 300)")
    parser.add_argument("--sweep", type=float, default=5.0, help="wall seconds between sweeps (default 5)")
    parser.add_argument("--duration", type=float, default=110.0,
                        help="wall seconds the load lasts at most (default 110)")
    parser.add_argument("--no-expiry", action="store_true", help="baseline: a ten-year retention")
    args = parser.parse_args(argv)
    samples = asyncio.run(soak(args.conversations, args.retention, args.rate, args.sweep, not args.no_expiry,
                               args.duration))
    print(report(samples, args.retention, args.rate, not args.no_expiry), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
