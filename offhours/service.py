"""``offhours run`` and ``offhours ingest``: the service's processes and their web server.

``offhours run``: the embedded broker (unless ``settings.broker_url`` is set), what the
last stop left on it put back (:func:`offhours.drain.replay_left`), the triage worker
(topics, app, reconciliation on the leader), then the web server. On Ctrl-C or SIGTERM
the stop drains (:mod:`offhours.drain`): the webhooks answer 503 and ``/readyz`` turns
false at once, the worker decides and delivers what was accepted for up to
``settings.drain_timeout`` seconds and hands back the rest, which is written out for the
next start; then the web server, the worker and the broker stop, in that order. A second
signal cuts the drain short (the rest is still written out).

``offhours ingest``: the same web server without a worker; it holds no partitions and
no table, so any number of replicas can run behind a balancer.

Both print a banner (:func:`run_banner`, :func:`ingest_banner`, pure functions): where
everything listens, what is configured and which ``OFFHOURS_...`` variable turns on the
rest (:mod:`edge.capabilities`), and on the embedded broker what a restart forgets.

Web routes, composed in :func:`build_web` and :func:`mount_edge`:

- ``/healthz``: the process is up;
- ``/readyz``: the broker answers, a coverage is loaded, (with a worker) the worker
  holds its partitions with its table recovered, and no stop is under way; 503 with
  what is missing otherwise;
- ``/metrics``: the Prometheus text of the process's :class:`~streams.metrics.Metrics`;
- ``/webhooks/...``: the webhook ingest (:func:`edge.app.build_webhooks`);
- ``settings.ops.api_prefix`` (``/api/v1``): the operations API (:mod:`edge.ops`);
- ``/console``: the operations console (:mod:`console`, docs/console.md).

Coverage in the service comes from the config topic: the config store reads it at
start (seeding it with the coverage file's text when it is empty) and follows it; each
valid new document is swapped into the local worker, so a change made through the API
on any process reaches every worker within seconds, and an invalid one changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import shlex
import signal
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from aiohttp import web
from aiokafka import AIOKafkaClient

from brokers.apache import KafkaServer, kafka_version
from brokers.client import KafkaConnection, client_options, connection_options
from brokers.tansu import EmbeddedBroker
from console.feed import Topics
from console.web import mount_console_off, mount_service_console
from edge import capabilities
from edge.access_log import RedactingAccessLogger
from edge.actions import KafkaActionSink
from edge.app import build_webhooks
from edge.config_store import KafkaConfigStore, NoCoverage, ensure_topic
from edge.ops import build_operations_api
from edge.ops_config import api_calendars
from edge.sink import KafkaEventSink
from offhours.drain import (
    Backlog,
    Draining,
    Guard,
    Outcome,
    Plan,
    drain,
    held_partitions,
    ledger_of,
    leftovers,
    replay_left,
    write_out,
)
from records.links import LinkSigner
from schedules import Coverage
from schedules.holiday import CalendarSource
from streams.app import OffhoursApp
from streams.metrics import CONTENT_TYPE, Metrics, track_consumer_lag
from streams.settings import Settings
from streams.worker import create_topics, running_worker

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0
WEBHOOKS_PREFIX = "/webhooks"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class BrokerProbe:
    """Asks the broker for its metadata, to tell ``/readyz`` whether it answers."""

    def __init__(self, connection: KafkaConnection, *, timeout: float = PROBE_TIMEOUT) -> None:
        self._bootstrap = connection
        self._timeout = timeout
        self._client: AIOKafkaClient | None = None

    async def start(self) -> None:
        client = AIOKafkaClient(**connection_options(self._bootstrap), request_timeout_ms=int(self._timeout * 1000))
        await client.bootstrap()
        self._client = client

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def reachable(self) -> bool:
        """True when a metadata request is answered within the timeout."""
        if self._client is None:
            return False
        try:
            await asyncio.wait_for(self._client.fetch_all_metadata(), self._timeout)
        except Exception:
            return False
        return True


@dataclass(frozen=True, slots=True)
class EdgeState:
    """The edge's long-lived resources that the service's own routes ask about."""

    config_store: KafkaConfigStore
    probe: BrokerProbe


PIPELINE: web.AppKey[OffhoursApp] = web.AppKey("pipeline", OffhoursApp)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
EDGE: web.AppKey[EdgeState] = web.AppKey("edge", EdgeState)
DRAINING: web.AppKey[Draining] = web.AppKey("draining", Draining)


class ServiceError(Exception):
    """The service cannot start (invalid coverage, unreadable file); the message says why."""


def load_coverage_or_fail(settings: Settings) -> Coverage:
    """The coverage of ``settings.coverage_file``, or :class:`ServiceError` listing the problems.

    The file also seeds the config topic, where holiday calendars are read by name from
    one folder (:func:`topic_calendars`): a file the topic would refuse stops the start
    here, with the problems, instead of later.
    """
    from edge.config_store import ConfigDocument, load_document
    from schedules import CoverageInvalid, load_coverage

    try:
        coverage = load_coverage(settings.coverage_file)
        load_document(ConfigDocument(yaml=settings.coverage_file.read_text(encoding="utf-8")),
                      calendars=topic_calendars(settings), limits=settings.ops.coverage_limits())
        return coverage
    except CoverageInvalid as exc:
        raise ServiceError(f"invalid coverage file {settings.coverage_file}:\n{exc}") from None
    except OSError as exc:
        raise ServiceError(
            f"cannot read coverage file {settings.coverage_file}: {exc.strerror or exc} "
            "(set --coverage FILE or OFFHOURS_COVERAGE_FILE)"
        ) from None


def topic_calendars(settings: Settings) -> CalendarSource:
    """Where coverage from the API and the config topic reads ``holidays.ics``: the folder
    ``OFFHOURS_OPS__HOLIDAY_CALENDARS_DIR``, by default the coverage file's folder."""
    return api_calendars(settings.ops.holiday_calendars_dir or settings.coverage_file.parent)


async def healthz(request: web.Request) -> web.Response:
    """Always 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when this process can do its work, 503 otherwise; the body names each check.

    ``worker``: the worker holds its partitions and its table is recovered (absent in
    ``offhours ingest``); ``broker``: the broker answers a metadata request;
    ``coverage``: a coverage is loaded from the config topic; ``coverage_applied`` (with
    a worker): the worker decides with the newest coverage, not an older one because it
    refused a newer version (the log and ``offhours_coverage_version_refused`` say which);
    ``accepting``: no stop is under way (false from its first moment, so a balancer stops
    sending traffic while the process drains).
    """
    root = request.app
    checks: dict[str, bool] = {}
    draining = root.get(DRAINING)
    if draining is not None:
        checks["accepting"] = not draining.active
    pipeline = root.get(PIPELINE)
    if pipeline is not None:
        checks["worker"] = pipeline.tables.recovery.completed.is_set() and not pipeline.rebalancing
    edge = root.get(EDGE)
    if edge is not None:
        checks["broker"] = await edge.probe.reachable()
        checks["coverage"] = _has_coverage(edge.config_store)
        if pipeline is not None:
            checks["coverage_applied"] = edge.config_store.followers.refused is None
    ready = all(checks.values())
    return web.json_response({"ready": ready, **checks}, status=200 if ready else 503)


def _has_coverage(store: KafkaConfigStore) -> bool:
    try:
        store.coverage()
    except NoCoverage:
        return False
    return True


async def metrics_text(request: web.Request) -> web.Response:
    """The process's metrics in the Prometheus text format."""
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def mount_edge(
    root: web.Application,
    settings: Settings,
    pipeline: OffhoursApp | None,
    *,
    metrics: Metrics,
    idempotent: bool = False,
    clock: Clock = _utc_now,
    draining: Draining | None = None,
) -> None:
    """The one place where the HTTP edge (webhooks, operations API) joins the service.

    ``settings.broker_url`` must be set. Mounts the webhooks at ``/webhooks`` (events
    produced to ``settings.events_topic``, counted in ``metrics.events_in`` by channel)
    and the operations API at ``settings.ops.api_prefix``. The configuration store
    reads ``settings.config_topic`` at startup, seeded with the coverage file's text
    when the topic is empty, and swaps every new valid coverage into ``pipeline`` (the
    local worker, None in ``offhours ingest``). ``idempotent`` turns on the idempotent
    producer of the webhooks (Apache Kafka; Tansu refuses it). Once ``draining`` is
    active the webhooks answer 503 with ``Retry-After``. Each long-lived
    resource starts and stops with one cleanup context of ``root``.
    """
    servers = client_options(settings)
    ops = settings.ops
    store = KafkaConfigStore(
        servers,
        topic=settings.config_topic,
        audit_topic=ops.audit_topic,
        clock=clock,
        filename=settings.coverage_file.name,
        replication=settings.replication,
        calendars=topic_calendars(settings),
        limits=ops.coverage_limits(),
    )
    actions = KafkaActionSink(
        servers, ops.actions_topic, partitions=settings.partitions, replication=settings.replication
    )
    probe = BrokerProbe(servers)
    root[EDGE] = EdgeState(store, probe)
    root.cleanup_ctx.append(_config_lifetime(store, settings, pipeline))
    root.cleanup_ctx.append(_lifetime(actions))
    root.cleanup_ctx.append(_lifetime(probe))

    sink = KafkaEventSink(servers, settings.events_topic, idempotent=idempotent)
    webhooks = build_webhooks(
        settings.edge, sink, now=clock, prefix="", on_produced=metrics.count_events_in,
        known_account=_known_account(store), coverage=_coverage_in_force(store), actions=actions,
        draining=None if draining is None else (lambda: draining.active),
    )
    root.add_subapp(WEBHOOKS_PREFIX, webhooks)

    signer = LinkSigner(
        ops.link_secret.get_secret_value(), ttl=ops.link_ttl, clock=clock, base_url=ops.actions_base_url
    )
    api = build_operations_api(store, actions, ops.bearer_tokens(), signer, clock, **ops.api_options())
    root.add_subapp(ops.api_prefix, api)
    if ops.console:
        topics = Topics(settings.events_topic, ops.actions_topic, settings.routes_topic)
        mount_service_console(root, store, ops, servers, topics, clock=clock, signer=signer)
    else:
        mount_console_off(root)


def _known_account(store: KafkaConfigStore) -> Callable[[str], bool | None]:
    """Whether a team of the coverage in force (the config topic's) lists an account;
    None before the store holds one. The webhooks warn about the accounts no team lists."""

    def known(account: str) -> bool | None:
        try:
            coverage = store.coverage()
        except NoCoverage:
            return None
        return coverage.team_for_account(account) is not None

    return known


def _coverage_in_force(store: KafkaConfigStore) -> Callable[[], Coverage | None]:
    """The coverage in force (the config topic's), None before the store holds one: the
    Chatwoot webhook finds the team of an inbox and the member of an agent in it."""

    def coverage() -> Coverage | None:
        try:
            return store.coverage()
        except NoCoverage:
            return None

    return coverage


def _lifetime(resource: KafkaActionSink | BrokerProbe) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await resource.start()
        try:
            yield
        finally:
            await resource.stop()

    return lifetime


def _config_lifetime(
    store: KafkaConfigStore, settings: Settings, pipeline: OffhoursApp | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        seed = settings.coverage_file.read_text(encoding="utf-8")
        await store.start(seed=seed)
        try:
            if pipeline is not None:
                # Called now with the topic's coverage (it may be newer than the file the
                # worker started with), then with every valid new document.
                await store.follow(_applied(pipeline, store))
            yield
        finally:
            await store.stop()

    return lifetime


def _applied(pipeline: OffhoursApp, store: KafkaConfigStore) -> Callable[[Coverage], None]:
    """The worker's follower of the config topic: swap the coverage, then show in the
    metrics which version the worker decides with and which (if any) it refused."""
    metrics = pipeline.metrics

    def swap(coverage: Coverage) -> None:
        version = store.current().version
        try:
            pipeline.coverage.swap(coverage)
        except Exception:
            if metrics is not None:
                metrics.coverage_refused.set(version)
            raise
        if metrics is not None:
            metrics.coverage_applied.set(version)
            metrics.coverage_refused.set(0)

    return swap


def build_web(
    settings: Settings,
    pipeline: OffhoursApp | None,
    *,
    metrics: Metrics,
    idempotent: bool = False,
    clock: Clock = _utc_now,
    draining: Draining | None = None,
) -> web.Application:
    """The service's aiohttp application: health routes, ``/metrics`` and the HTTP edge.

    ``pipeline`` is the local worker, None for ``offhours ingest``; ``draining`` the stop's
    flag (webhooks 503, ``/readyz`` false once it is active).
    """
    root = web.Application()
    if draining is not None:
        root[DRAINING] = draining
    if pipeline is not None:
        root[PIPELINE] = pipeline
    root[METRICS] = metrics
    root.router.add_get("/healthz", healthz)
    root.router.add_get("/readyz", readyz)
    root.router.add_get("/metrics", metrics_text)
    mount_edge(root, settings, pipeline, metrics=metrics, idempotent=idempotent, clock=clock, draining=draining)
    return root


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[Settings]:
    """``settings`` with a broker: the configured one, or a started embedded one.

    The embedded broker is Tansu (memory only; ``broker_flavour=tansu``, so its
    accommodations apply: one record per produce batch, the short fetch wait, no
    recovery consistency check), or with
    ``embedded_broker=kafka`` a single Apache Kafka node keeping its data in
    ``data_dir/kafka`` (:mod:`brokers.apache`; ``broker_flavour=kafka``: Faust's stock
    settings), its tables in RocksDB under ``data_dir`` when rocksdict is installed (else
    rebuilt from their changelog topics at start), stopped with a controlled shutdown.
    """
    if not settings.embedded:
        yield settings
        return
    if not settings.durable:
        async with EmbeddedBroker() as broker:
            yield settings.with_overrides(broker_url=broker.url, broker_flavour="tansu", one_record_batches=True)
        return
    server = KafkaServer(data_dir=settings.data_dir / "kafka")
    await asyncio.to_thread(server.start)
    try:
        yield settings.with_overrides(broker_url=server.url, broker_flavour="kafka", store=durable_store(settings))
    finally:
        await asyncio.to_thread(server.stop)


def durable_store(settings: Settings) -> str:
    """The table store of the durable single machine: the configured one, else RocksDB when
    rocksdict is installed, else memory (tables rebuilt from their changelogs at start)."""
    if "store" in settings.model_fields_set:
        return settings.store
    return "rocksdb://" if importlib.util.find_spec("rocksdict") is not None else settings.store


async def prepare_config_topic(settings: Settings) -> None:
    """Create the config topic compacted with one partition, before anything else creates it.

    The worker creates every pipeline topic with ``settings.partitions`` partitions and
    the broker's default retention; the coverage documents must instead be kept for
    ever (compaction keeps the latest per key) and read in one order.
    """
    await ensure_topic(
        client_options(settings),
        settings.config_topic,
        partitions=1,
        replication=settings.replication,
        configs={"cleanup.policy": "compact"},
    )


@contextlib.asynccontextmanager
async def serving(app: web.Application, settings: Settings) -> AsyncIterator[str]:
    """Serve ``app`` on ``settings.web_host:web_port``; yields the base URL (the real port when 0)."""
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)  # no tokens in the access log
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{_url_host(host)}:{port}"
    finally:
        await runner.cleanup()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def route_lines(base: str, settings: Settings) -> list[str]:
    """Where the web routes are."""
    api = f"{base}{settings.ops.api_prefix}"
    return [
        f"web:      {base} (/healthz, /readyz, /metrics)",
        f"webhooks: {base}{WEBHOOKS_PREFIX}/generic, /meta, /x, /telegram, /chatwoot",
        f"api:      {api} (OpenAPI: {api}/openapi.json; Authorization: Bearer <token>)",
        f"console:  {base}/console (sign in with a token of OFFHOURS_OPS__TOKENS)"
        if settings.ops.console
        else "console:  off in this process (OFFHOURS_OPS__CONSOLE=false)",
    ]


BANNER_INDENT = " " * 10
BANNER_WIDTH = 100


def configuration_lines(settings: Settings, coverage: Coverage | None = None, *, banner: bool = True) -> list[str]:
    """What is configured and, for the rest, which ``OFFHOURS_...`` variable to set
    (:mod:`edge.capabilities`, never a value), the ``coverage`` accounts nothing
    answers for, then the embedded broker's restart warning when ``settings`` name no
    broker. Pure: the banner and (``banner`` false) ``offhours config check`` print it."""
    see = " (offhours config check says the same)" if banner else ""
    lines = [f"config:   what works and which setting turns on the rest{see}"]
    lines += [BANNER_INDENT + line for line in capabilities.status_lines(settings)]
    if coverage is not None:
        accounts = [account for team in coverage.teams.values() for account in team.accounts]
        lines += [
            f"{BANNER_INDENT}{'accounts:':<18} {advice}"
            for advice in capabilities.credential_advice(settings, accounts)
        ]
    warning = capabilities.restart_warning(settings)
    if warning is not None:
        lines += textwrap.wrap(
            warning, BANNER_WIDTH, initial_indent="warning:  ", subsequent_indent=BANNER_INDENT,
            break_on_hyphens=False, break_long_words=False,
        )
    return lines


def run_banner(settings: Settings, live: Settings, coverage: Coverage, base: str | None) -> list[str]:
    """What ``offhours run`` prints once it serves: where everything is, what is configured.

    ``settings`` as configured (no broker: the embedded one), ``live`` with the broker
    in use, ``base`` the web server's URL (None without one). Pure, for the tests.
    """
    embedded = ""
    if settings.durable:
        embedded = f" (embedded Apache Kafka {kafka_version()}, data in {settings.data_dir / 'kafka'}; tables: {live.store})"
    elif settings.embedded:
        embedded = " (embedded, memory only)"
    lines = [f"broker:   {live.broker_url}{embedded}", f"coverage: {live.coverage_file}"]
    lines += [
        f"team:     {team_id} {team.timezone} ({', '.join(team.accounts)})"
        for team_id, team in sorted(coverage.teams.items())
    ]
    lines.append(f"topics:   {live.events_topic} -> {live.decisions_topic}")
    lines.append(f"watch:    {watch_command(live)}")
    if base is not None:
        lines += route_lines(base, live)
    return lines + configuration_lines(settings, coverage)


def ingest_banner(settings: Settings, live: Settings, coverage: Coverage, base: str) -> list[str]:
    """What ``offhours ingest`` prints once it serves (as :func:`run_banner`)."""
    embedded = " (embedded: for a demo only; replicas need a shared broker)" if settings.embedded else ""
    return [
        f"broker:   {live.broker_url}{embedded}",
        f"coverage: {live.coverage_file} (seeds {live.config_topic} when empty; teams: "
        f"{', '.join(sorted(coverage.teams))})",
        f"topics:   webhooks -> {live.events_topic}",
        *route_lines(base, live),
        *configuration_lines(settings, coverage),
    ]


def watch_command(settings: Settings) -> str:
    """The shell command that prints each new decision of the service on ``settings``' broker."""
    return shlex.join(
        ["offhours", "decisions", "--broker", settings.broker_url or "", "--topic", settings.decisions_topic, "--follow"]
    )


@dataclass(frozen=True, slots=True)
class Signals:
    """``stopping``: the first SIGINT or SIGTERM; ``hurry``: a second one (cut the drain short)."""

    stopping: asyncio.Event
    hurry: asyncio.Event


def _stop_on_signals() -> Signals:
    signals = Signals(asyncio.Event(), asyncio.Event())
    loop = asyncio.get_running_loop()

    def received() -> None:
        (signals.hurry if signals.stopping.is_set() else signals.stopping).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, received)
    return signals


async def run_service(
    settings: Settings,
    *,
    web_enabled: bool = True,
    out: TextIO,
    metrics: Metrics | None = None,
    idempotent: bool = False,
) -> int:
    """Run until SIGINT or SIGTERM, then stop as :mod:`offhours.drain` says; returns the exit code.

    ``metrics`` is the process's metrics (a new one when None); ``idempotent`` turns
    on the webhooks' idempotent producer (Apache Kafka only: Tansu, the embedded broker
    included, refuses it). What the stop did is printed on ``out``: a ``stopping`` line at
    once, a ``drained`` or ``handed back`` line, and ``stopped in N s``.
    """
    coverage = load_coverage_or_fail(settings)
    metrics = metrics or Metrics()
    signals = _stop_on_signals()
    draining = Draining()

    async with broker_for(settings) as live:
        await prepare_config_topic(live)
        replayed = await replay_left(live, coverage)
        async with running_worker(live, coverage, metrics=metrics) as pipeline, _tracking_lag(pipeline, metrics):
            guard = Guard(ledger=ledger_of(pipeline))
            pipeline.delivery_guard = guard  # type: ignore[attr-defined]  # streams.outbox.DeliveryGuard
            async with contextlib.AsyncExitStack() as web_stack:
                base = None
                if web_enabled:
                    app = build_web(live, pipeline, metrics=metrics, idempotent=idempotent, draining=draining)
                    base = await web_stack.enter_async_context(serving(app, live))
                print(*run_banner(settings, live, coverage, base), sep="\n", file=out)
                if replayed:
                    print(f"replayed: {replayed} records the last stop left for this start", file=out)
                print("ready; Ctrl-C to stop", file=out, flush=True)
                await signals.stopping.wait()
                began = time.monotonic()
                draining.start(began)
                print(f"stopping: webhooks answer 503, /readyz false; draining for at most {live.drain_timeout:g} s"
                      " (Ctrl-C again to cut it short)", file=out, flush=True)
                try:
                    async with Backlog(live) as backlog:
                        outcome = await drain(
                            pipeline, guard, backlog, Plan(began, live.drain_timeout), hurry=signals.hurry
                        )
                except Exception:  # the broker gone, say: hand back what is in flight and stop
                    log.exception("stop: the drain failed; handing back what is in flight")
                    guard.cut()
                    outcome = Outcome(held=held_partitions(pipeline))
                if outcome.drained:
                    print(f"drained: everything accepted was decided and delivered ({outcome.seconds:.1f} s)",
                          file=out, flush=True)
        left = await leftovers(live, outcome.held, time.monotonic() + 5.0)
        written = await write_out(live, guard.handed, left, timeout=live.drain_timeout)
        if written.handed or written.left:
            print(f"handed back: {written.handed} deliveries not made and {written.left} records not reached, "
                  f"kept for the next start in {written.where} (one log line each)", file=out, flush=True)
    print(f"stopped in {time.monotonic() - began:.1f} s", file=out, flush=True)
    return 0


async def run_ingest(
    settings: Settings,
    *,
    out: TextIO,
    metrics: Metrics | None = None,
    idempotent: bool = False,
) -> int:
    """Serve the webhooks, the operations API and the health routes, with no worker.

    Stateless apart from the webhooks' dedupe memory: replicas share nothing but the
    broker. The coverage file seeds the config topic when it is empty (and is checked
    at start either way). Runs until SIGINT or SIGTERM; returns the exit code.
    """
    coverage = load_coverage_or_fail(settings)
    metrics = metrics or Metrics()
    signals = _stop_on_signals()
    draining = Draining()

    async with broker_for(settings) as live:
        await prepare_config_topic(live)
        await create_topics(live)
        app = build_web(live, None, metrics=metrics, idempotent=idempotent, draining=draining)
        async with serving(app, live) as base:
            print(*ingest_banner(settings, live, coverage, base), sep="\n", file=out)
            print("ready; Ctrl-C to stop", file=out, flush=True)
            await signals.stopping.wait()
            draining.start(time.monotonic())  # webhooks 503, /readyz false while the requests in hand finish
            print("stopping", file=out, flush=True)
    return 0


@contextlib.asynccontextmanager
async def _tracking_lag(pipeline: OffhoursApp, metrics: Metrics) -> AsyncIterator[None]:
    task = asyncio.create_task(
        track_consumer_lag(pipeline.consumer, pipeline.settings.events_topic, metrics), name="consumer lag"
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
