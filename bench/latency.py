"""Webhook -> acknowledgment latency (issue 7 stage 4; issue 20 "storm latency") in two
shapes, at offered loads given in events per second.

Run:  python -m bench.latency [--shape single|deployed|both] [--seconds S] [--rates 300,500,700,1000]
      [--quick] [--no-ladder] [--broker kafka|kafka://host:port] [--profile]

**single** (as ``offhours run`` on one machine): one service child composed like
``offhours run``: the triage worker (:func:`streams.app.create_app`, reconciliation on
the leader), the responders (:func:`streams.outbox.install`: acks and routes agents,
delivery ledger) and the webhook ingest (:func:`edge.app.build_webhooks` with a
:class:`~edge.sink.KafkaEventSink`), one event loop. Default loads 100/300/500/1000 ev/s,
10 s each. Issue 20: >= 300 ev/s sustained with p99 <= 200 ms.

**deployed** (as deploy/ runs it): two children, started with the environment the
deploy files give them (:func:`deployed_env`): ``python -m offhours ingest`` (webhooks,
memory store) and one worker, ``python -m offhours run`` (stream worker and responders,
its own web server as deploy/'s workers have, ``rocksdb://`` tables), each ready when it
prints its ``ready;`` line (the worker's after its tables are recovered). Default loads
300/500/700/1000 ev/s, 60 s each, offered as a ladder: the run stops after the first load
at or above 500 ev/s that is not sustained. It also reports the CPU each process (ingest,
worker, this process, the broker) used per event. Issue 20: p99 <= 100 ms at 500 ev/s,
sustained for 60 s.

In both, this process plays the platforms: it POSTs signed Messenger webhooks
(``X-Hub-Signature-256``) open-loop, each at its scheduled instant whatever the earlier
ones are doing, and serves the fake Graph API (:class:`responders.fakes.FakeGraph`, a
real aiohttp server on 127.0.0.1) that receives the acknowledgments. Latency is POST
start -> the fake received that customer's acknowledgment; POST start -> the webhook's
answer and POST start -> decision on the decisions topic are measured beside it. All go
into HdrHistograms (microseconds, 3 significant digits).

The coverage is one team that is closed at all times (so every message is
acknowledged) answering on eight Facebook pages, so that the Send API's 300 sends/s
per page limit (responders.messenger) is not what is measured. Each event is its own
conversation, so no acknowledgment is suppressed as a duplicate.

A load is *sustained* when nothing was refused, every acknowledgment arrived (within
the drain time), the POSTs kept to at least 95 % of the offered rate, the median latency
of the last quarter of the POSTs is at most 1.3 times the first quarter's plus 50 ms
(the lag did not grow), and the last acknowledgment came at most
:data:`MAX_TAIL_SECONDS` after the last POST (no backlog was left).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import web
from hdrh.histogram import HdrHistogram

from bench.common import (
    ROOT,
    Target,
    broker_name,
    machine_line,
    mib,
    run_settings,
    status_kib,
    worker_env,
    write_closed_coverage,
)
from edge.signatures import meta_signature
from responders.fakes import FakeGraph

PAGES = 8
SECRET = "bench-meta-app-secret"
TOKEN = "bench-page-token"
TARGET_P99_MS = 100.0
TARGET_RATE = 500
DRAIN_SECONDS = 15.0
"""How long acknowledgments are awaited after the last POST: this, or half the load's length if longer."""
WARMUP_EVENTS = 40
SINGLE_TARGET_RATE = 300
SINGLE_TARGET_P99_MS = 200.0
READY_TIMEOUT = 120.0
MAX_TAIL_SECONDS = 2.0
"""A load is sustained only if its last acknowledgment came at most this long after its last POST."""


def page_id(n: int) -> str:
    return f"PAGE_{n}"


def account(n: int) -> str:
    return f"bench.fb.{n}"


def write_coverage(directory: Path) -> Path:
    """The benchmark's coverage file: one always-closed team on :data:`PAGES` pages."""
    return write_closed_coverage(directory, [account(n) for n in range(PAGES)])


# -- the service child -----------------------------------------------------------------


def service_settings(broker_url: str, run: str, coverage_file: Path, graph_url: str, flavour: str):  # -> Settings
    """The service's settings on a ``flavour`` broker: the run's topics, the fake Graph API, the bench secrets."""
    from edge.config import EdgeSettings
    from responders.config import AccountCredentials, ResponderSettings

    data_dir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    # rate_per_second=0: the benchmark offers up to 1,000 webhooks/s from one address.
    edge = EdgeSettings(
        meta_app_secret=SECRET, accounts={page_id(n): account(n) for n in range(PAGES)}, rate_per_second=0
    )
    responders = ResponderSettings(
        graph_base_url=graph_url,
        egress_allow=("127.0.0.1",),
        accounts={account(n): AccountCredentials(page_id=page_id(n), access_token=TOKEN) for n in range(PAGES)},
    )
    return run_settings(
        broker_url, run, data_dir, flavour=flavour, coverage_file=coverage_file, edge=edge, responders=responders
    )


async def serve(broker_url: str, run: str, coverage_file: Path, graph_url: str, flavour: str) -> None:
    """Worker + responders + webhook ingest in one loop; prints ``READY <port>``."""
    from edge.app import build_webhooks
    from edge.sink import KafkaEventSink
    from schedules import load_coverage
    from streams.app import create_app
    from streams.outbox import install
    from streams.worker import attach_reconciler, create_topics

    settings = service_settings(broker_url, run, coverage_file, graph_url, flavour)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    await create_topics(settings)
    app = create_app(settings, load_coverage(coverage_file))
    install(app, app.stream_topics, settings)
    stop_reconciler = attach_reconciler(app)
    await app.start()
    runner: web.AppRunner | None = None
    try:
        await asyncio.wait_for(app.tables.recovery.completed.wait(), 60)
        sink = KafkaEventSink(settings.bootstrap_servers, settings.events_topic)
        runner = web.AppRunner(build_webhooks(settings.edge, sink), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"READY {runner.addresses[0][1]}", flush=True)
        await stopping.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await stop_reconciler()
        await app.stop()


# -- the platform side -----------------------------------------------------------------


class StampingGraph(FakeGraph):
    """The fake Graph API, noting when each customer's acknowledgment arrived (each
    customer is made known to it as its webhook is posted)."""

    def __init__(self) -> None:
        super().__init__({TOKEN})
        self.arrived: dict[str, float] = {}

    async def record(self, request: web.Request):  # -> Recorded
        recorded = await super().record(request)
        now = time.perf_counter()
        body = orjson.loads(recorded.body)
        recipient = (body.get("recipient") or {}).get("id")
        if recipient is not None:
            self.arrived.setdefault(recipient, now)
        return recorded


@dataclass
class LoadResult:
    """One offered load's figures."""

    rate: int
    seconds: float
    sent: int = 0
    refused: int = 0
    achieved_rate: float = 0.0
    acks: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 120_000_000, 3))
    decisions: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 120_000_000, 3))
    answers: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 120_000_000, 3))
    missing_acks: int = 0
    missing_decisions: int = 0
    first_quarter_ms: float = 0.0
    last_quarter_ms: float = 0.0
    tail_s: float = 0.0
    """Seconds from the last POST to the last acknowledgment: the backlog left when the load stopped."""
    carried: int = 0
    """Acknowledgments of the previous load still outstanding when this one started."""
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process used over the load and its drain."""
    wall: float = 0.0
    """Seconds of the load and its drain."""

    @property
    def sustained(self) -> bool:
        return (
            self.refused == 0
            and self.missing_acks == 0
            and self.achieved_rate >= 0.95 * self.rate
            and self.last_quarter_ms <= 1.3 * self.first_quarter_ms + 50.0
            and self.tail_s <= MAX_TAIL_SECONDS
        )


def messenger_payload(n: int, psid: str, mid: str) -> bytes:
    """One signed-webhook body: a Messenger DM from ``psid`` to page ``n % PAGES``."""
    page = page_id(n % PAGES)
    now_ms = int(time.time() * 1000)
    return orjson.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page,
                    "time": now_ms,
                    "messaging": [
                        {
                            "sender": {"id": psid},
                            "recipient": {"id": page},
                            "timestamp": now_ms,
                            "message": {"mid": mid, "text": "Il mio ordine non è arrivato"},
                        }
                    ],
                }
            ],
        }
    )


class DecisionWatch:
    """Notes when each event's decision appears on the decisions topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.arrived: dict[str, float] = {}

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            metadata_max_age_ms=500,
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batches.values():
                    for record in records:
                        event_id = orjson.loads(record.value).get("event_id")
                        if event_id:
                            self.arrived.setdefault(event_id, now)
        finally:
            await consumer.stop()


async def offer(
    session: aiohttp.ClientSession,
    url: str,
    fake: StampingGraph,
    watch: DecisionWatch,
    rate: int,
    seconds: float,
    tag: str,
) -> LoadResult:
    """POST ``rate * seconds`` webhooks open-loop at ``rate``/s; collect their latencies."""
    result = LoadResult(rate, seconds)
    count = int(rate * seconds)
    started: dict[int, float] = {}
    tasks: list[asyncio.Task[None]] = []

    async def post(n: int) -> None:
        psid = f"{tag}_{n}"
        body = messenger_payload(n, psid, f"m_{tag}_{n}")
        fake.add_customer(psid, datetime.now(UTC))  # the platform knows who wrote
        headers = {"X-Hub-Signature-256": meta_signature(SECRET, body), "Content-Type": "application/json"}
        started[n] = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                result.answers.record_value(max(1, int((time.perf_counter() - started[n]) * 1e6)))
                if answer.status != 200:
                    result.refused += 1
        except aiohttp.ClientError:
            result.refused += 1

    begin = time.perf_counter() + 0.05
    for n in range(count):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(n)))
    last_post = time.perf_counter()
    result.sent = count
    result.achieved_rate = count / max(last_post - begin, 1e-9)
    await asyncio.gather(*tasks)

    psids = [f"{tag}_{n}" for n in range(count)]
    deadline = time.perf_counter() + max(DRAIN_SECONDS, seconds / 2)
    while time.perf_counter() < deadline and not all(p in fake.arrived for p in psids):
        await asyncio.sleep(0.05)

    ack_ms: list[float] = []
    for n, psid in enumerate(psids):
        sent = started[n]
        acked = fake.arrived.get(psid)
        decided = watch.arrived.get(f"fb:m_{tag}_{n}")
        if acked is None:
            result.missing_acks += 1
        else:
            result.acks.record_value(max(1, int((acked - sent) * 1e6)))
            ack_ms.append((acked - sent) * 1000)
        if decided is None:
            result.missing_decisions += 1
        else:
            result.decisions.record_value(max(1, int((decided - sent) * 1e6)))
    arrivals = [fake.arrived[p] for p in psids if p in fake.arrived]
    result.tail_s = max(0.0, max(arrivals) - last_post) if arrivals else 0.0
    quarter = max(1, len(ack_ms) // 4)
    if ack_ms:
        result.first_quarter_ms = sorted(ack_ms[:quarter])[quarter // 2]
        result.last_quarter_ms = sorted(ack_ms[-quarter:])[quarter // 2]
    return result


def _ms(histogram: HdrHistogram, percentile: float) -> str:
    if histogram.get_total_count() == 0:
        return "n/a"
    return f"{histogram.get_value_at_percentile(percentile) / 1000:,.1f}"


def report(results: list[LoadResult], peak_kib: int | None, note: str, flavour: str = "tansu") -> str:
    """The markdown section for stage 4."""
    lines = [
        f"## Webhook -> acknowledgment latency (issue 7, stage 4; {broker_name(flavour)})",
        "",
        f"Machine: {machine_line()}. Service child: worker + responders + webhook ingest in one "
        f"process (as `offhours run`); this process POSTs signed Messenger webhooks open-loop and "
        f"serves the fake Graph API. Latency in ms from POST start; peak RSS of the service "
        f"{mib(peak_kib)}.{(' ' + note) if note else ''}",
        "",
        *_table(results),
    ]
    sustained = [r.rate for r in results if r.sustained]
    at_target = next((r for r in results if r.rate == TARGET_RATE), None)
    lines.append("")
    lines.append(f"- highest load sustained without growing lag: **{max(sustained):,} ev/s**" if sustained
                 else "- no offered load was sustained without growing lag")
    if at_target is not None and at_target.acks.get_total_count():
        p99 = at_target.acks.get_value_at_percentile(99) / 1000
        met = "met" if p99 <= TARGET_P99_MS and at_target.missing_acks == 0 else "MISSED"
        lines.append(f"- p99 webhook -> ack delivered at {TARGET_RATE} ev/s: **{p99:,.1f} ms** "
                     f"(target <= {TARGET_P99_MS:.0f} ms: {met})")
    return "\n".join(lines)


async def run(
    broker_url: str,
    *,
    rates: Sequence[int],
    seconds: float,
    out=sys.stdout,
    profile: bool = False,
    flavour: str = "tansu",
) -> list[LoadResult]:
    """Stage 4 on the broker at ``broker_url`` (a ``flavour`` broker); prints the report to ``out``.

    With ``profile`` the service child runs under cProfile and the report ends with its
    top functions (the whole life of the child, all loads).
    """
    run_id = f"latency-{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    coverage_file = write_coverage(directory)
    fake = StampingGraph()
    await fake.start()
    profile_to = directory / "service.prof" if profile else None
    command = [sys.executable]
    if profile_to is not None:
        command += ["-m", "cProfile", "-o", str(profile_to)]
    command += ["-m", "bench.latency", "--serve", broker_url, run_id, str(coverage_file), fake.url, flavour]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")},
    )
    results: list[LoadResult] = []
    peak: int | None = None
    note = ""
    watching: asyncio.Task[None] | None = None
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 90)
        if not line.startswith(b"READY"):
            raise RuntimeError(f"the service did not start (exit {process.returncode})")
        port = int(line.split()[1])
        url = f"http://127.0.0.1:{port}/webhooks/meta"
        settings = service_settings(broker_url, run_id, coverage_file, fake.url, flavour)
        watch = DecisionWatch(settings.bootstrap_servers[0], settings.decisions_topic)
        watching = asyncio.create_task(watch.run())
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as session:
            print("[latency] warm-up ...", file=sys.stderr, flush=True)
            warm = await offer(session, url, fake, watch, 20, WARMUP_EVENTS / 20, "warm")
            if warm.missing_acks:
                note = (f"Warm-up: {warm.missing_acks} of {warm.sent} acknowledgments never reached the "
                        "fake platform; see the decision columns for webhook -> decision.")
            for rate in rates:
                print(f"[latency] {rate} ev/s for {seconds:g} s ...", file=sys.stderr, flush=True)
                results.append(await offer(session, url, fake, watch, rate, seconds, f"r{rate}"))
        peak = status_kib("VmHWM", process.pid)
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await fake.stop()
    print(report(results, peak, note, flavour), file=out, flush=True)
    if profile_to is not None:
        from bench.pipeline import top_functions

        print("\n### cProfile of the service child (all loads)\n", file=out)
        print(top_functions(profile_to) if profile_to.exists() else "(no profile written)", file=out, flush=True)
    return results


# -- the deployed shape: `offhours ingest` and a worker, each its own process -------------


def deployed_env(settings, flavour: str, *, store: str) -> dict[str, str]:  # settings: Settings
    """The environment of the deployed shape's children: the run's topics (as
    :func:`bench.common.worker_env`), the bench's webhook secret and page mapping, the
    fake Graph API with the eight pages' tokens, a free web port on 127.0.0.1, ``store``."""
    env = worker_env(settings, dict(os.environ))
    edge, responders = settings.edge, settings.responders
    env.update(
        OFFHOURS_STORE=store,
        OFFHOURS_WEB_HOST="127.0.0.1",
        OFFHOURS_WEB_PORT="0",
        OFFHOURS_EDGE__META_APP_SECRET=SECRET,
        OFFHOURS_EDGE__ACCOUNTS=json.dumps(dict(edge.accounts)),
        OFFHOURS_EDGE__RATE_PER_SECOND="0",
        OFFHOURS_RESPONDERS__GRAPH_BASE_URL=responders.graph_base_url,
        OFFHOURS_RESPONDERS__EGRESS_ALLOW=json.dumps(list(responders.egress_allow)),
        OFFHOURS_RESPONDERS__ACCOUNTS=json.dumps(
            {name: {"page_id": creds.page_id, "access_token": TOKEN} for name, creds in responders.accounts.items()}
        ),
        # One secret for every process, as deploy/ does (the claim links of a worker's notices).
        OFFHOURS_OPS__LINK_SECRET="bench-link-secret-" + "x" * 16,
    )
    return env


class Child:
    """One service process of the deployed shape (``python -m offhours ingest|run ...``).

    Its stdout is read line by line: :meth:`ready` returns once it printed ``ready;``
    (the ingest serves its webhooks; the worker's tables are recovered and it holds its
    partitions) with the ``webhooks:`` URL it printed. Its stderr goes to a file, never
    to a pipe nobody reads (see :func:`bench.pipeline.run_child`).
    """

    def __init__(self, name: str, command: list[str], env: dict[str, str], directory: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.stderr_path = directory / f"{name}.stderr"
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reading: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        with open(self.stderr_path, "wb") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                *self.command, cwd=ROOT, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=stderr
            )
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self.lines.append(text)
            if text.startswith("ready;"):
                self._ready.set()

    async def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for its ``ready;`` line; raises with the tail of its stderr if it exits or times out first."""
        assert self.process is not None and self._reading is not None
        waiting = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self.process.wait())
        try:
            done, _ = await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            exited.cancel()
        if not self._ready.is_set():
            why = f"exited with {self.process.returncode}" if self.process.returncode is not None else "timed out"
            raise RuntimeError(f"{self.name} {why} before it was ready: {self.tail()}")

    def webhooks_url(self) -> str:
        """The base URL of its webhooks, from its ``webhooks: <url>/generic, ...`` line."""
        line = next(x for x in self.lines if x.startswith("webhooks:"))
        return line.split()[1].rsplit("/", 1)[0]

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.stderr_path.read_text("utf-8", "replace").strip().splitlines()
        except OSError:
            return "(no stderr)"
        return " | ".join(text[-lines:]) or "(no output)"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def peak_kib(self) -> int | None:
        return None if self.process is None else status_kib("VmHWM", self.process.pid)

    async def stop(self, timeout: float = 40.0) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The embedded Tansu broker's pid, a child of this process (None when not found)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split("(", 1)[1].rsplit(")", 1)
        if rest.split()[1] == me and ("tansu" in name or "java" in name):
            return int(stat.parent.name)
    return None


def worker_store() -> str:
    """The workers' table store in deploy/ (``rocksdb://``) when rocksdict is installed."""
    return "rocksdb://" if importlib.util.find_spec("rocksdict") is not None else "memory://"


async def run_deployed(
    broker_url: str,
    *,
    rates: Sequence[int],
    seconds: float,
    out=sys.stdout,
    flavour: str = "tansu",
    ladder: bool = True,
    profile: bool = False,
    split: bool = True,
) -> list[LoadResult]:
    """Storm latency in the deployed shape on the broker at ``broker_url``; prints the report.

    Two children, as deploy/ runs them: ``offhours ingest`` (webhooks only, memory store)
    and one worker, ``offhours run`` (stream worker and responders; its own web server,
    as deploy/'s workers have for their health checks; ``rocksdb://`` tables). Each is
    ready when it prints its ``ready;`` line. The loads are offered in order; with
    ``ladder`` the run stops after the first load at or above the target rate that
    is not sustained (the next, higher ones would not be either). ``profile`` runs the
    children under cProfile.

    Without ``split`` there is one child, ``offhours run`` as on one machine (worker,
    responders and web server with the webhooks; its default memory store), and the
    webhooks are posted to it: the single-process target (:func:`single_target`).
    """
    run_id = f"{'deployed' if split else 'single'}-{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix="bench-deployed-"))
    coverage_file = write_coverage(directory)
    fake = StampingGraph()
    await fake.start()
    settings = service_settings(broker_url, run_id, coverage_file, fake.url, flavour)
    idempotent = ["--idempotent-producer"] if flavour == "kafka" else []
    base = [sys.executable, "-m", "offhours"]
    profile_to = directory / "worker.prof" if profile else None
    ingest_profile = directory / "ingest.prof" if profile else None
    worker_command = [sys.executable, "-m", "cProfile", "-o", str(profile_to), "-m", "offhours"] if profile_to else base
    ingest_command = [sys.executable, "-m", "cProfile", "-o", str(ingest_profile), "-m", "offhours"] if ingest_profile else base
    if split:
        ingest = Child("ingest", [*ingest_command, "ingest", *idempotent], deployed_env(settings, flavour, store="memory://"),
                       directory)
        # As deploy/ runs its workers: the api (here the ingest) serves the console.
        worker = Child("worker", [*worker_command, "run", *idempotent],
                       {**deployed_env(settings, flavour, store=worker_store()), "OFFHOURS_OPS__CONSOLE": "false"},
                       directory)
        shape, target_rate = "deployed shape", TARGET_RATE
    else:
        # One process: it is the webhooks' server and the worker (profiled as the worker).
        ingest = worker = Child("service", [*worker_command, "run", *idempotent],
                                deployed_env(settings, flavour, store="memory://"), directory)
        ingest_profile = None
        shape, target_rate = "offhours run", SINGLE_TARGET_RATE
    results: list[LoadResult] = []
    peaks: dict[str, int | None] = {}
    note = ""
    watching: asyncio.Task[None] | None = None
    try:
        # The ingest creates the topics and seeds the config topic; the worker joins after.
        await ingest.start()
        await ingest.ready()
        if worker is not ingest:
            await worker.start()
            await worker.ready()
        url = f"{ingest.webhooks_url()}/meta"
        watch = DecisionWatch(settings.bootstrap_servers[0], settings.decisions_topic)
        watching = asyncio.create_task(watch.run())
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector) as session:
            print(f"[latency] {shape}: warm-up ...", file=sys.stderr, flush=True)
            warm = await offer(session, url, fake, watch, 20, WARMUP_EVENTS / 20, "dwarm")
            if warm.missing_acks:
                note = (f"Warm-up: {warm.missing_acks} of {warm.sent} acknowledgments never reached the "
                        "fake platform.")
            pids: dict[str, int | str | None] = (
                {"ingest": ingest.pid, "worker": worker.pid} if split else {"offhours run": worker.pid}
            )
            pids.update({"bench (load, fake Graph API)": "self", "broker": broker_pid()})
            for rate in rates:
                print(f"[latency] {shape}: {rate} ev/s for {seconds:g} s ...", file=sys.stderr, flush=True)
                before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid is not None}
                began = time.perf_counter()
                result = await offer(session, url, fake, watch, rate, seconds, f"d{rate}")
                result.carried = results[-1].missing_acks if results else warm.missing_acks
                wall = time.perf_counter() - began
                result.wall = wall
                result.cpu = {
                    name: after - before[name]
                    for name, pid in pids.items()
                    if pid is not None and before.get(name) is not None and (after := cpu_seconds(pid)) is not None
                }
                results.append(result)
                if ladder and rate >= target_rate and not result.sustained:
                    break
        peaks = {"ingest": ingest.peak_kib(), "worker": worker.peak_kib()} if split else {"offhours run": worker.peak_kib()}
    finally:
        if watching is not None:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        await worker.stop()
        if ingest is not worker:
            await ingest.stop()
        await fake.stop()
    carried = [f"{r.rate:,} ev/s began with {r.carried:,}" for r in results if r.carried]
    if carried:
        note += (" Acknowledgments of the previous load still outstanding when a load began (it shares the "
                 "machine with their backlog): " + "; ".join(carried) + ".")
    skipped = [r for r in rates if r not in {x.rate for x in results}]
    if skipped:
        note += f" Not offered (a lower load at or above {target_rate} ev/s was not sustained): " + \
            ", ".join(f"{r:,}" for r in skipped) + " ev/s."
    print(deployed_report(results, peaks, note.strip(), flavour, split=split), file=out, flush=True)
    if profile_to is not None:
        from bench.pipeline import top_functions

        for name, path in (("worker", profile_to), ("ingest", ingest_profile)):
            print(f"\n### cProfile of the {name} child (all loads; {path})\n", file=out)
            print(top_functions(path) if path is not None and path.exists() else "(no profile written)",
                  file=out, flush=True)
    return results


def _table(results: list[LoadResult]) -> list[str]:
    lines = [
        "| offered ev/s | achieved POST/s | events | refused | webhook answered p50 / p99 | ack p50 | ack p99 "
        "| ack p99.9 | ack max | missing acks | decision p50 | decision p99 | lag q1 -> q4 (p50 ms) | sustained |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.rate:,} | {r.achieved_rate:,.0f} | {r.sent:,} | {r.refused} | "
            f"{_ms(r.answers, 50)} / {_ms(r.answers, 99)} | {_ms(r.acks, 50)} | "
            f"{_ms(r.acks, 99)} | {_ms(r.acks, 99.9)} | {_ms(r.acks, 100)} | {r.missing_acks} | "
            f"{_ms(r.decisions, 50)} | {_ms(r.decisions, 99)} | "
            f"{r.first_quarter_ms:,.0f} -> {r.last_quarter_ms:,.0f} | {'yes' if r.sustained else 'no'} |"
        )
    return lines


def deployed_report(
    results: list[LoadResult], peaks: dict[str, int | None], note: str, flavour: str, *, split: bool = True
) -> str:
    """The markdown section of the deployed shape (``split``) or of the single ``offhours run``."""
    if split:
        title = "Storm latency, deployed shape"
        what = (f"Two children as deploy/ runs them: `offhours ingest` (webhooks) and one worker, `offhours run` "
                f"(stream worker + responders, {worker_store()} tables); this process POSTs signed Messenger "
                "webhooks open-loop to the ingest and serves the fake Graph API")
    else:
        title = "Webhook -> acknowledgment latency, single `offhours run`"
        what = ("One child, `offhours run` (worker, responders and the web server with the webhooks, memory "
                "store); this process POSTs signed Messenger webhooks open-loop to it and serves the fake Graph API")
    rss = ", ".join(f"{name} {mib(kib)}" for name, kib in peaks.items())
    lines = [
        f"## {title} (issue 20; {broker_name(flavour)})",
        "",
        f"Machine: {machine_line()}. {what}. Latency in ms from POST start; peak RSS {rss}."
        f"{(' ' + note) if note else ''}",
        "",
        *_table(results),
        "",
    ]
    if any(r.cpu for r in results):
        lines += [
            "CPU of each process over each load and its drain, in ms per event (and cores used; "
            f"{os.cpu_count()} cores in all, shared with whatever else runs):",
            "",
            "| offered ev/s | " + " | ".join(results[0].cpu) + " |",
            "|---:|" + "---:|" * len(results[0].cpu),
            *(f"| {r.rate:,} | " + " | ".join(
                f"{v * 1000 / max(r.sent, 1):.2f} ({v / max(r.wall, 1e-9):.2f})" for v in r.cpu.values()
            ) + " |" for r in results),
            "",
        ]
    target = deployed_target(results) if split else single_target(results)
    lines.append(f"- {target.name}: {target.measured} (target {target.wanted}: {'met' if target.met else 'missed'})")
    return "\n".join(lines)


def _p99_ms(result: LoadResult | None) -> float | None:
    if result is None or result.acks.get_total_count() == 0:
        return None
    return result.acks.get_value_at_percentile(99) / 1000


def _highest(results: Sequence[LoadResult]) -> str:
    sustained = [r.rate for r in results if r.sustained]
    return f"highest sustained {max(sustained):,} ev/s" if sustained else "no load sustained"


def _at_rate(at: LoadResult | None, rate: int, p99: float | None, seconds: float | None) -> str:
    """What the load at ``rate`` showed, in words."""
    if at is None:
        return f"{rate} ev/s not offered"
    length = f"{seconds:g} s" if seconds is not None else ""
    if p99 is None:
        return f"no acknowledgment within the drain at {rate} ev/s ({length})"
    state = "sustained" if at.sustained else "not sustained"
    missing = f", {at.missing_acks:,} of {at.sent:,} acks missing" if at.missing_acks else ""
    return f"p99 {p99:,.0f} ms at {rate} ev/s ({state}{missing}, {length})"


def deployed_target(results: Sequence[LoadResult], seconds: float | None = None) -> Target:
    """Issue 20's storm-latency target for the deployed shape, from its loads."""
    at = next((r for r in results if r.rate == TARGET_RATE), None)
    p99 = _p99_ms(at)
    length = seconds if seconds is not None else (at.seconds if at is not None else None)
    measured = f"{_at_rate(at, TARGET_RATE, p99, length)}; {_highest(results)}"
    met = at is not None and p99 is not None and p99 <= TARGET_P99_MS and at.sustained and at.seconds >= 60
    return Target(
        "storm latency, deployed shape (ingest + 1 worker)",
        f"p99 <= {TARGET_P99_MS:.0f} ms at {TARGET_RATE} ev/s, sustained 60 s",
        measured,
        met,
    )


def single_target(results: Sequence[LoadResult]) -> Target:
    """Issue 20's target for the single-process composition (as ``offhours run``)."""
    at = next((r for r in results if r.rate == SINGLE_TARGET_RATE), None)
    p99 = _p99_ms(at)
    measured = f"{_at_rate(at, SINGLE_TARGET_RATE, p99, at.seconds if at else None)}; {_highest(results)}"
    met = at is not None and p99 is not None and p99 <= SINGLE_TARGET_P99_MS and at.sustained
    return Target(
        "single-process `offhours run`",
        f">= {SINGLE_TARGET_RATE} ev/s sustained, p99 <= {SINGLE_TARGET_P99_MS:.0f} ms",
        measured,
        met,
    )


def not_run(name: str, wanted: str, why: str) -> Target:
    return Target(name, wanted, f"not run ({why})", False)



def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        broker_url, run_id, coverage_file, graph_url, flavour = argv[1:]
        # uvloop, like the worker's entry point (streams.worker.main).
        uvloop.run(serve(broker_url, run_id, Path(coverage_file), graph_url, flavour))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("single", "deployed", "both", "composed"), default="both",
                        help="single: one `offhours run` process; deployed: `offhours ingest` and an `offhours run` "
                        "worker as two processes (as deploy/); both (default); composed: issue 7's stage 4 child "
                        "(worker, responders and webhooks composed in one loop, without the rest of `offhours run`)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per offered load (default 10 single, 60 deployed; 4 and 10 with --quick)")
    parser.add_argument("--rates", default=None,
                        help="offered loads, events/s, comma list (default 100,300,500,1000 single; "
                        "300,500,700,1000 deployed)")
    parser.add_argument("--quick", action="store_true", help="short loads")
    parser.add_argument("--no-ladder", action="store_true",
                        help="offer every rate even after one at or above the target rate (500 ev/s deployed, "
                        "300 single) was not sustained")
    parser.add_argument("--broker", help="kafka://host:port of a running broker, or `kafka` to start one "
                        "Apache Kafka node (default: start the embedded Tansu)")
    parser.add_argument("--flavour", choices=("kafka", "tansu"), default="kafka",
                        help="what a --broker URL is (default kafka: the service's Apache Kafka settings)")
    parser.add_argument("--profile", action="store_true", help="run the service children under cProfile")
    args = parser.parse_args(argv)

    def rates(default: str) -> list[int]:
        return [int(r) for r in (args.rates or default).split(",") if r.strip()]

    async def shapes(url: str, flavour: str) -> list[Target]:
        targets = []
        if args.shape == "composed":
            await run(url, rates=rates("100,300,500,1000"), profile=args.profile, flavour=flavour,
                      seconds=args.seconds or (4.0 if args.quick else 10.0))
        if args.shape in ("single", "both"):
            single = await run_deployed(url, rates=rates("100,300,500,1000"), profile=args.profile, flavour=flavour,
                                        seconds=args.seconds or (4.0 if args.quick else 10.0),
                                        ladder=not args.no_ladder, split=False)
            targets.append(single_target(single))
            print(flush=True)
        if args.shape in ("deployed", "both"):
            deployed = await run_deployed(url, rates=rates("300,500,700,1000"), profile=args.profile,
                                          flavour=flavour, seconds=args.seconds or (10.0 if args.quick else 60.0),
                                          ladder=not args.no_ladder)
            targets.append(deployed_target(deployed))
        return targets

    async def go() -> None:
        if args.broker and "://" in args.broker:
            targets = await shapes(args.broker, args.flavour)
        else:
            from bench.pipeline import started_broker

            async with started_broker(args.broker or "tansu") as (url, flavour):
                targets = await shapes(url, flavour)
        from bench.common import targets_table

        print("\n" + targets_table(targets), flush=True)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
