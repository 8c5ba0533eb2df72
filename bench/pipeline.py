"""Pipeline throughput (issue 7, stages 1-3): offhours against the raw aiokafka limit and
a no-op Faust agent, on one broker (the embedded Tansu, or one Apache Kafka node with
``--broker kafka``) and the same event payloads.

Run:  python -m bench.pipeline [--events N] [--quick] [--profile] [--broker tansu|kafka|URL]

1. **limit**: raw aiokafka consume -> JSON decode -> produce (``acks=all``), committing
   after every fetched batch;
2. **framework**: a no-op Faust agent doing the same, with the app options of
   :func:`streams.app.faust_options` for the broker (on Tansu its accommodations, on
   Apache Kafka Faust's stock transport), one event and one ``topic.send`` at a time;
   **batched**: the same no-op agent batched as the triage agent is (``noack_take``,
   records straight to the producer), the framework's best with offhours' code path;
3. **offhours**: the production worker, ``python -m streams.worker`` (the real
   :func:`streams.app.create_app` agent: coverage, conversation table, policy,
   acknowledgment rendering, the outbox, decisions and dead-letter writes, and the
   reconciliation timer), configured through its environment exactly as deployed,
   except that it delivers nothing (``OFFHOURS_RESPONDERS__DELIVER=false``): the
   bench has no platform tokens, and delivery is what :mod:`bench.latency` measures.

Every stage runs in its own child process on fresh topics pre-loaded with the same
payloads (generated once, seeded). This process counts the stage's output records
(the decisions topic for offhours) with a plain consumer; a stage's rate runs from its
first output batch to its last output, so start-up and group join are left out. Peak
memory is the child's ``VmHWM``. ``--profile`` runs the offhours worker under
cProfile and prints where its time goes.

Issue 20's worker throughput target compares stage 3 with the batched stage 2:
:func:`throughput` gives both rates of a run, :func:`targets` the met/missed line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop

from bench.common import (
    EXAMPLE_COVERAGE,
    ROOT,
    MixSummary,
    OutputCounter,
    Payload,
    Target,
    broker_name,
    create_topics,
    end_offsets,
    event_mix,
    machine_line,
    mib,
    produce,
    run_settings,
    status_kib,
    worker_env,
)

TARGET_LIMIT_SHARE = 0.5
TARGET_BATCHED_SHARE = 0.5
"""Issue 20's worker throughput target: offhours decides at least this share of the
events/s of the batched no-op Faust agent (stage 2, batched) on the same events."""
STAGE_TIMEOUT = 240.0


@dataclass(frozen=True, slots=True)
class StageResult:
    """One stage's measurement."""

    name: str
    rate: float | None
    outputs: int
    seconds: float | None
    peak_kib: int | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Throughput:
    """What issue 20's worker throughput target compares, from one run's stages."""

    offhours: float | None
    """events/s of the offhours worker (stage 3); None when it did not finish."""
    batched: float | None
    """events/s of the batched no-op Faust agent (stage 2, batched); None when it did not finish."""
    flavour: str = "tansu"

    @property
    def share(self) -> float | None:
        """offhours / batched, or None without both rates."""
        return self.offhours / self.batched if self.offhours and self.batched else None


def throughput(results: Sequence[StageResult], flavour: str = "tansu") -> Throughput:
    """The offhours and batched-framework rates of ``results`` (what :func:`run` returns)."""
    by = {r.name: r for r in results}
    ours, batched = by.get("offhours"), by.get("batched")
    return Throughput(ours.rate if ours else None, batched.rate if batched else None, flavour)


def targets(results: Sequence[StageResult], flavour: str = "tansu") -> list[Target]:
    """Issue 20's worker throughput target, as ``results`` (one broker's :func:`run`) measured it."""
    rates = throughput(results, flavour)
    wanted = f">= {TARGET_BATCHED_SHARE:.0%} of the batched no-op Faust agent's events/s, same events"
    name = f"worker throughput, {broker_name(flavour)}"
    share = rates.share
    if share is None:
        notes = "; ".join(f"{r.name}: {r.note}" for r in results if r.note) or "a stage did not finish"
        return [Target(name, wanted, f"n/a ({notes})", False)]
    measured = (
        f"{share:.1%} (offhours {rates.offhours:,.0f} ev/s; batched Faust agent {rates.batched:,.0f} ev/s)"
    )
    return [Target(name, wanted, measured, share >= TARGET_BATCHED_SHARE)]


# -- child processes -------------------------------------------------------------------


async def limit_child(bootstrap: str, source: str, sink: str, group: str, stopping: asyncio.Event) -> None:
    """Raw aiokafka: consume ``source``, decode each value, produce it to ``sink``."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    _decode(record.value)
                    await producer.send(sink, key=record.key, value=record.value)
            if batches:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def framework_child(
    bootstrap: str,
    source: str,
    sink: str,
    group: str,
    stopping: asyncio.Event,
    *,
    flavour: str = "tansu",
    batched: bool = False,
) -> None:
    """A no-op Faust agent with offhours' app options: decode each value, send it on.

    One event and one ``topic.send`` at a time; with ``batched``, the way the triage agent
    goes (:func:`streams.app.decide_batch`): ``noack_take`` batches, records straight to
    the producer, each event acknowledged.
    """
    import faust

    from streams.app import TRIAGE_BATCH, TRIAGE_WITHIN, faust_options

    data_dir = Path(tempfile.mkdtemp(prefix="bench-framework-"))
    settings = run_settings(f"kafka://{bootstrap}", group, data_dir, flavour=flavour)
    app = faust.App(group, **faust_options(settings))
    src = app.topic(source, key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    dst = app.topic(sink, key_serializer="raw", value_serializer="raw", partitions=settings.partitions)

    async def one_at_a_time(stream: faust.StreamT) -> None:
        async for event in stream.events():
            _decode(event.value)
            await dst.send(key=event.key, value=event.value)

    async def in_batches(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(TRIAGE_BATCH, within=TRIAGE_WITHIN):
            for event in events:
                _decode(event.value)
                await app.producer.send(sink, event.key, event.value, None, None, None)
                await stream.ack(event)

    app.agent(src, name="relay")(in_batches if batched else one_at_a_time)
    await app.start()
    try:
        await stopping.wait()
    finally:
        await app.stop()


def _decode(value: bytes | None) -> object:
    try:
        return orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None


def child_main(argv: Sequence[str]) -> int:
    """``python -m bench.pipeline --child {limit,framework,batched} BOOTSTRAP SOURCE SINK GROUP FLAVOUR``."""
    kind, bootstrap, source, sink, group, flavour = argv
    body = {
        "limit": limit_child,
        "framework": functools.partial(framework_child, flavour=flavour),
        "batched": functools.partial(framework_child, flavour=flavour, batched=True),
    }[kind]

    async def serve() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await body(bootstrap, source, sink, group, stopping)

    # The same event loop as the offhours worker (streams.worker.main), so the stages
    # compare code, not loops.
    uvloop.run(serve())
    return 0


# -- the orchestrating side ------------------------------------------------------------


async def run_child(
    command: list[str],
    counter: OutputCounter,
    *,
    env: dict[str, str] | None = None,
    timeout: float = STAGE_TIMEOUT,
) -> tuple[int | None, str]:
    """Start ``command``, wait until ``counter`` saw every output, stop it gently.

    Returns the child's peak RSS (KiB, read just before it is stopped) and a note
    (empty, or what went wrong). The child's stderr goes to a file, never to a pipe
    nobody reads: a worker logging a warning per dead letter fills a pipe's 64 KiB and
    then blocks on its next write (that stalled this benchmark at ~6,500 of 8,000).
    """
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    counting = asyncio.create_task(counter.run())
    note = ""
    try:
        deadline = time.monotonic() + timeout
        while not counter.done.is_set():
            if process.poll() is not None:
                note = f"child exited with {process.returncode}: {_tail(stderr)}"
                break
            if time.monotonic() > deadline:
                note = (
                    f"timed out after {timeout:.0f} s with {counter.count} of {counter.expected} outputs: "
                    f"{_tail(stderr)}"
                )
                break
            await asyncio.sleep(0.1)
        peak = status_kib("VmHWM", process.pid)
    finally:
        counting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await counting
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.get_running_loop().run_in_executor(None, process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr.close()
    return peak, note


def _tail(stderr: typing.BinaryIO) -> str:
    """The last lines the child wrote to ``stderr`` (a file it still holds open)."""
    stderr.seek(0)
    lines = stderr.read().decode("utf-8", "replace").strip().splitlines()
    return " | ".join(lines[-5:]) or "(no output)"


async def relay_stage(name: str, bootstrap: str, payloads: Sequence[Payload], flavour: str) -> StageResult:
    """Stage 1 or 2: pre-load a fresh topic, run the child, count its outputs."""
    run = f"{name}-{uuid.uuid4().hex[:8]}"
    source, sink = f"bench-{run}.in", f"bench-{run}.out"
    await create_topics(bootstrap, [source, sink])
    await produce(bootstrap, source, payloads)
    counter = OutputCounter(bootstrap, sink, len(payloads))
    command = [sys.executable, "-m", "bench.pipeline", "--child", name, bootstrap, source, sink, f"bench-{run}", flavour]
    peak, note = await run_child(command, counter)
    seconds = counter.last_at - counter.first_at if counter.first_at and counter.last_at else None
    return StageResult(name, counter.rate, counter.count, seconds, peak, note)


async def offhours_stage(
    broker_url: str,
    payloads: Sequence[Payload],
    *,
    coverage_file: Path = EXAMPLE_COVERAGE,
    profile_to: Path | None = None,
    store: str = "memory://",
    flavour: str = "tansu",
) -> tuple[StageResult, dict[str, int]]:
    """Stage 3: the production worker process on fresh topics; counts its decisions.

    Also returns how many records each outbox and the dead-letter topic received.
    """
    run = f"offhours-{uuid.uuid4().hex[:8]}"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-offhours-"))
    settings = run_settings(broker_url, run, data_dir, flavour=flavour, coverage_file=coverage_file, store=store)
    bootstrap = settings.bootstrap_servers[0]
    from streams.worker import create_topics as create_pipeline_topics

    await create_pipeline_topics(settings)
    await produce(bootstrap, settings.events_topic, payloads)
    counter = OutputCounter(bootstrap, settings.decisions_topic, len(payloads))
    command = [sys.executable]
    if profile_to is not None:
        command += ["-m", "cProfile", "-o", str(profile_to)]
    command += ["-m", "streams.worker"]
    env = worker_env(settings, dict(os.environ))
    # Stage 3 is the triage pipeline; delivery to the platforms is bench.latency's part.
    env["OFFHOURS_RESPONDERS__DELIVER"] = "false"
    peak, note = await run_child(command, counter, env=env)
    seconds = counter.last_at - counter.first_at if counter.first_at and counter.last_at else None
    side = {
        "acks": await end_offsets(bootstrap, settings.acks_topic),
        "routes": await end_offsets(bootstrap, settings.routes_topic),
        "dead letters": await end_offsets(bootstrap, settings.dead_letter_topic),
    }
    return StageResult("offhours", counter.rate, counter.count, seconds, peak, note), side


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.1%}"


def report(
    results: list[StageResult], mix: MixSummary, side: dict[str, int], produce_rate: float, flavour: str = "tansu"
) -> str:
    """The markdown section for stages 1-3."""
    by = {r.name: r for r in results}
    limit, framework, batched, ours = by.get("limit"), by.get("framework"), by.get("batched"), by.get("offhours")
    lines = [
        f"## Pipeline throughput (issue 7, stages 1-3; {broker_name(flavour)})",
        "",
        f"Machine: {machine_line()}. One broker, {broker_name(flavour)}, with the service's settings "
        f"for it; {len(results)} stages on fresh "
        f"4-partition topics pre-loaded with the same {mix.events:,} events (seeded): "
        f"{mix.conversations:,} conversations over {mix.accounts} accounts of {mix.teams} teams, "
        f"{mix.repeats:,} repeats in an earlier conversation, {mix.invalid:,} invalid; instants "
        f"spread over the week of {EXAMPLE_COVERAGE.name}'s Black Friday. Producer pre-load: "
        f"{produce_rate:,.0f} events/s.",
        "",
        "| stage | what runs (child process) | events/s | outputs | measured s | peak RSS | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    what = {
        "limit": "raw aiokafka consume -> orjson -> produce",
        "framework": "no-op Faust agent (offhours' app options)",
        "batched": "the same agent batched like offhours' triage agent",
        "offhours": "`python -m streams.worker` (create_app), decisions counted",
    }
    for r in results:
        seconds = "n/a" if r.seconds is None else f"{r.seconds:.1f}"
        lines.append(
            f"| {r.name} | {what[r.name]} | {_rate(r.rate)} | {r.outputs:,} | {seconds} | {mib(r.peak_kib)} | {r.note} |"
        )
    lines += [""]
    if ours is not None:
        limit_share = ours.rate / limit.rate if ours.rate and limit and limit.rate else None
        met = "met" if limit_share is not None and limit_share >= TARGET_LIMIT_SHARE else "MISSED"
        lines += [
            f"- offhours / limit: **{_ratio(ours.rate, limit.rate if limit else None)}** "
            f"(target >= {TARGET_LIMIT_SHARE:.0%}: {met})",
            f"- offhours / framework: **{_ratio(ours.rate, framework.rate if framework else None)}**; "
            f"offhours / batched framework: **{_ratio(ours.rate, batched.rate if batched else None)}** "
            f"(target >= {TARGET_BATCHED_SHARE:.0%}: "
            f"{'met' if all(t.met for t in targets(results, flavour)) else 'MISSED'})",
            f"- framework / limit: {_ratio(framework.rate if framework else None, limit.rate if limit else None)}; "
            f"batched framework / limit: {_ratio(batched.rate if batched else None, limit.rate if limit else None)}",
            "- offhours side effects: " + ", ".join(f"{v:,} {k}" for k, v in side.items()),
        ]
    return "\n".join(lines)


def top_functions(path: Path, top: int = 25) -> str:
    """The ``top`` functions of a cProfile dump by own time and by cumulative time (markdown)."""
    lines: list[str] = []
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        lines += [f"By {key}:", "", "```", text[start:].rstrip() if start >= 0 else text.rstrip(), "```", ""]
    return "\n".join(lines)


def profile_report(path: Path, events: int, top: int = 25) -> str:
    """The top functions of a cProfile dump, by own time and by cumulative time."""
    lines = [f"### cProfile of the offhours worker ({events:,} events; whole process life)", ""]
    lines.append(top_functions(path, top))
    stats = pstats.Stats(str(path))
    shares = split(stats)
    lines.append("Per-event time split (cumulative seconds / events):")
    lines.append("")
    for label, seconds in shares.items():
        lines.append(f"- {label}: {seconds:.2f} s, {seconds / max(events, 1) * 1e6:,.0f} µs/event")
    return "\n".join(lines)


SPLIT_FUNCTIONS = {
    "decide_event (whole agent body)": ("app.py", "decide_event"),
    "policy: Triage.decide": ("policy.py", "decide"),
    "state decode (ConversationState.from_bytes)": ("state.py", "from_bytes"),
    "state encode (to_bytes)": ("state.py", "to_bytes"),
    "outbox, decision and dead-letter sends (streams.app.emit)": ("app.py", "emit"),
    "table writes (Table.__setitem__, all tables)": ("collections.py", "__setitem__"),
    "conversation writes at the end of each batch (streams.app._write_states)": ("app.py", "_write_states"),
    "Faust's producer buffer (changelog records: publish_message)": ("topics.py", "publish_message"),
    "aiokafka produce requests (Sender._send_produce_req)": ("sender.py", "_send_produce_req"),
    "event loop: select/epoll wait": ("selectors.py", "select"),
}


def split(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds of the functions in :data:`SPLIT_FUNCTIONS` (summed over matches)."""
    totals: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for label, (filename, function) in SPLIT_FUNCTIONS.items():
        seconds = 0.0
        for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in raw.items():
            if name == function and file.endswith(filename):
                seconds = max(seconds, ct)
        totals[label] = seconds
    return totals


async def run(
    broker_url: str, *, events: int, profile: bool = False, out=sys.stdout, flavour: str = "tansu"
) -> list[StageResult]:
    """Stages 1-3 on the broker at ``broker_url`` (a ``flavour`` broker); prints the report to
    ``out`` and returns the stages' results."""
    bootstrap = broker_url.split("://", 1)[-1]
    payloads, mix = event_mix(events)
    probe = f"bench-preload-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [probe])
    produce_rate = events / await produce(bootstrap, probe, payloads)
    results = []
    for name in ("limit", "framework", "batched"):
        print(f"[pipeline] stage {name} ...", file=sys.stderr, flush=True)
        results.append(await relay_stage(name, bootstrap, payloads, flavour))
    print("[pipeline] stage offhours ...", file=sys.stderr, flush=True)
    ours, side = await offhours_stage(broker_url, payloads, flavour=flavour)
    results.append(ours)
    print(report(results, mix, side, produce_rate, flavour), file=out, flush=True)
    if profile:
        print("[pipeline] stage offhours under cProfile ...", file=sys.stderr, flush=True)
        path = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "worker.prof"
        profiled, _ = await offhours_stage(broker_url, payloads, profile_to=path, flavour=flavour)
        print(f"\nUnder cProfile: {_rate(profiled.rate)} events/s.\n", file=out)
        if path.exists():
            print(profile_report(path, profiled.outputs), file=out, flush=True)
        else:
            print("(the profiled worker wrote no profile)", file=out)
    return results


def side_by_side(by_broker: dict[str, list[StageResult]]) -> str:
    """Stages 1-3 of each broker's run in one markdown table: events/s and share of that broker's limit."""
    flavours = list(by_broker)
    head = " | ".join(f"{broker_name(f)} ev/s | of its limit | peak RSS" for f in flavours)
    lines = [
        "## Stages 1-3 side by side",
        "",
        f"| stage | {head} |",
        "|---|" + "---:|---:|---:|" * len(flavours),
    ]
    rows: dict[str, dict[str, StageResult]] = {}
    for flavour, results in by_broker.items():
        for r in results:
            rows.setdefault(r.name, {})[flavour] = r
    for name, per in rows.items():
        cells = []
        for flavour in flavours:
            r = per.get(flavour)
            limit = next((x.rate for x in by_broker[flavour] if x.name == "limit"), None)
            cells += [_rate(r.rate if r else None), _ratio(r.rate if r else None, limit), mib(r.peak_kib if r else None)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def started_broker(kind: str) -> typing.AsyncIterator[tuple[str, str]]:
    """``(url, flavour)`` of a broker started for the run: ``tansu`` (embedded) or ``kafka``
    (one Apache Kafka node, :class:`brokers.apache.KafkaServer`, stopped at the end)."""
    if kind == "kafka":
        from brokers.apache import KafkaServer

        server = KafkaServer()
        await asyncio.to_thread(server.start)
        try:
            yield server.url, "kafka"
        finally:
            await asyncio.to_thread(server.stop)
        return
    from brokers.tansu import EmbeddedBroker

    async with EmbeddedBroker() as broker:
        yield broker.url, "tansu"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="events per stage (default 30000; 8000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a short run (8000 events)")
    parser.add_argument("--profile", action="store_true", help="also run the offhours worker under cProfile")
    parser.add_argument(
        "--broker", default="tansu",
        help="tansu (start the embedded broker; the default), kafka (start one Apache Kafka node), "
        "both (one after the other, then a side-by-side table) or kafka://host:port of a running broker",
    )
    parser.add_argument("--flavour", choices=("kafka", "tansu"), default="kafka",
                        help="what a --broker URL is (default kafka: the service's Apache Kafka settings)")
    args = parser.parse_args(argv)
    if "://" not in args.broker and args.broker not in ("tansu", "kafka", "both"):
        parser.error(f"--broker {args.broker}: tansu, kafka, both or a kafka://host:port URL")
    events = args.events or (8000 if args.quick else 30000)

    async def go() -> None:
        if "://" in args.broker:
            await run(args.broker, events=events, profile=args.profile, flavour=args.flavour)
            return
        kinds = ("tansu", "kafka") if args.broker == "both" else (args.broker,)
        by_broker = {}
        for kind in kinds:
            async with started_broker(kind) as (url, flavour):
                by_broker[flavour] = await run(url, events=events, profile=args.profile, flavour=flavour)
            print(flush=True)
        if len(by_broker) > 1:
            print(side_by_side(by_broker), flush=True)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
