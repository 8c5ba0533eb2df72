"""Running the Faust app inside an asyncio program, and the stand-alone worker process.

:func:`running_worker` is the one way the app is run: it creates the topics, installs
the responders (:func:`streams.outbox.install`, unless ``settings.responders.deliver``
is off), starts the app (and the reconciliation timer on the leader), waits until the
worker is ready, starts the promise timers (:func:`start_promise_timers`: escalation
sweeps and the handover at each opening, on every worker, each over the partitions it
holds), and stops it cleanly on exit. ``offhours run``, ``offhours replay`` and the
tests all use it.

``python -m streams.worker`` runs one worker from the environment settings (the
distributed setup and the failover test use it): the coverage file comes from
``OFFHOURS_COVERAGE_FILE``, the broker from ``OFFHOURS_BROKER_URL``. On stdout it
prints ``READY`` once it processes events and ``ASSIGNED 0,2`` (the events
partitions it holds) after each rebalance; it exits on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ConsumerStoppedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
    for_code,
)
from faust.types import TP

from brokers.client import client_options
from schedules import Coverage, Team
from streams.app import Decider, OffhoursApp, create_app
from streams.metrics import Metrics
from streams.outbox import (
    Outbox,
    claim_links,
    install,
    mode_from,
    notify_secrets_from,
    on_call_from,
)
from streams.reconcile import Reconciler, group_committed
from streams.settings import Settings
from streams.sweeps import hand_over, sweep_promises
from streams.timers import PromiseTimers
from streams.watchdog import Progress

SWEEP_EVERY = timedelta(seconds=30)
"""How often a worker looks for escalations due (a step is late by at most this)."""

log = logging.getLogger(__name__)


def topic_names(settings: Settings) -> list[str]:
    """Every topic the pipeline reads or writes."""
    return [
        settings.events_topic,
        settings.decisions_topic,
        settings.acks_topic,
        settings.routes_topic,
        settings.dead_letter_topic,
        settings.deliveries_topic,
        settings.config_topic,
        settings.ops.actions_topic,
    ]


TOPIC_CREATION_DEADLINE = 60.0
"""Seconds :func:`create_topics` keeps trying while the broker answers with transient errors."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KafkaConnectionError,  # the broker is not listening yet (or went away), also from admin.start()
    NodeNotReadyError,
    RequestTimedOutError,
    KafkaTimeoutError,
    TimeoutError,  # the admin client's wait for a ready node (async_timeout)
)
"""Errors of a broker that is starting or electing a controller: worth another try.

Besides these, every broker error aiokafka marks ``retriable`` (e.g. no controller or
leader yet) counts as transient.
"""


class TopicCreationError(RuntimeError):
    """The pipeline's topics could not be created: a lasting broker error, or transient ones past the deadline."""


def _describe(exc: BaseException) -> str:
    """``Type: message`` (aiokafka's errors name their type in their text already)."""
    name, text = type(exc).__name__, str(exc)
    if not text:
        return name
    return text if name in text else f"{name}: {text}"


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may pass if topic creation is tried again."""
    return isinstance(exc, TRANSIENT_ERRORS) or (isinstance(exc, KafkaError) and bool(exc.retriable))


async def create_topics(
    settings: Settings,
    *,
    deadline: float = TOPIC_CREATION_DEADLINE,
    admin: Callable[[], AIOKafkaAdminClient] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Create the pipeline's topics with the configured partitions; existing ones are kept.

    Faust creates the topics it consumes, but a topic it only writes would be created
    by the broker on first use with the broker's default partition count; creating all
    of them first keeps every topic co-partitioned with the input.

    A broker that is starting (not listening yet, no controller, a node not ready, a
    request timing out: :func:`is_transient`) is tried again, with a growing pause of
    at most 2 s, until ``deadline`` seconds have passed; then, or at once on any other
    error (also one the broker reports for a topic, e.g. an invalid replication factor),
    :class:`TopicCreationError` says which broker, for how long, and the last error.
    ``admin`` makes the admin client of one attempt (default: one for ``settings``).
    """
    make_admin = admin or (lambda: AIOKafkaAdminClient(**client_options(settings)))
    where = ", ".join(settings.bootstrap_servers)
    give_up = clock() + deadline
    pause = 0.25
    attempts = 0
    while True:
        attempts += 1
        try:
            await _create_topics_once(settings, make_admin())
            return
        except TopicCreationError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise TopicCreationError(f"cannot create the pipeline's topics on {where}: {_describe(exc)}") from exc
            left = give_up - clock()
            if left <= 0:
                raise TopicCreationError(
                    f"cannot create the pipeline's topics on {where}: the broker still failed after "
                    f"{deadline:g} s ({attempts} attempts); last error: {_describe(exc)}"
                ) from exc
            log.warning("creating topics on %s: %s; trying again in %.2f s", where, _describe(exc), min(pause, left))
            await sleep(min(pause, left))
            pause = min(pause * 2, 2.0)


async def _create_topics_once(settings: Settings, admin: AIOKafkaAdminClient) -> None:
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=settings.replication)
            for name in topic_names(settings)
            if name not in existing
        ]
        if wanted:
            try:
                response = await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                return  # another worker created them first
            _check_created(response)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _check_created(response: object) -> None:
    """Raise the first error the broker reports for a topic (one that exists already is no error)."""
    for entry in getattr(response, "topic_errors", ()):
        name, code = entry[0], entry[1]
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code)
        message = entry[2] if len(entry) > 2 and entry[2] else error.description
        if error.retriable:
            raise error(f"topic {name}: {message}")
        raise TopicCreationError(f"the broker refused to create topic {name}: {error.__name__}: {message}")


def attach_reconciler(app: OffhoursApp) -> Callable[[], Awaitable[None]]:
    """Run reconciliation passes on the leader every ``settings.reconcile_interval`` s.

    Returns the coroutine function that closes the reconciler's consumers.
    """
    settings = app.settings
    holder: dict[str, Reconciler] = {}

    async def reissue(partition: int, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        await app.stream_topics.events.send(key=key, value=value, partition=partition, headers=headers)

    @app.timer(settings.reconcile_interval, on_leader=True, name="reconcile")
    async def reconcile() -> None:
        reconciler = holder.get("active")
        try:
            if reconciler is None:
                reconciler = holder["active"] = Reconciler(settings, reissue)
                await reconciler.start()
            await reconciler.run_pass()
        except (KafkaConnectionError, NodeNotReadyError, KafkaTimeoutError, ConsumerStoppedError) as exc:
            # A broker node down or moving (a cluster losing a node): expected, one line.
            log.warning("reconcile: pass failed (%s: %s); retrying in %s s", type(exc).__name__, exc, settings.reconcile_interval)
            holder.pop("active", None)
            if reconciler is not None:
                with contextlib.suppress(Exception):
                    await reconciler.stop()
        except Exception:
            # Anything else must not stop the worker either; the next pass starts afresh
            # from the stored watermark.
            log.exception("reconcile: pass failed; retrying in %s s", settings.reconcile_interval)
            holder.pop("active", None)
            if reconciler is not None:
                with contextlib.suppress(Exception):
                    await reconciler.stop()

    async def stop_reconciler() -> None:
        reconciler = holder.pop("active", None)
        if reconciler is not None:
            await reconciler.stop()

    return stop_reconciler


def attach_watchdog(app: OffhoursApp) -> Progress:
    """Watch the events partitions this worker holds; read one that stalled for
    ``settings.watchdog_after`` seconds again (see :mod:`streams.watchdog`).

    :func:`running_worker` attaches it on every broker, Apache Kafka included.
    """
    settings = app.settings
    after = settings.watchdog_after
    progress = app.progress = Progress(after)

    @app.on_partitions_revoked.connect
    async def revoked(sender: object, revoked: set[TP], **kwargs: object) -> None:
        for tp in revoked:
            if tp.topic == settings.events_topic:
                progress.forget(tp.partition)

    @app.timer(max(1.0, min(after / 3, 5.0)), name="watchdog")
    async def watch() -> None:
        if not app.tables.recovery.completed.is_set() or not app.flow_control.is_active():
            progress.rebalancing()
            return
        held = [tp for tp in app.consumer.assignment() if tp.topic == settings.events_topic]
        if not held:
            return
        try:
            ends = {tp.partition: int(end) for tp, end in (await app.consumer.highwaters(*held)).items()}
            stalled = progress.stalled(ends, time.monotonic())
            if stalled:
                await _read_again(app, progress, {p: ends[p] for p in stalled})
        except Exception as exc:  # a rebalance under way; the next tick looks again
            log.info("watchdog: skipped a check (%s)", type(exc).__name__)

    return progress


async def _read_again(app: OffhoursApp, progress: Progress, stalled: dict[int, int]) -> None:
    """Seek each stalled partition (``stalled``: its reported end) back to its committed offset."""
    settings = app.settings
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        found = await group_committed(admin, settings)
    finally:
        await admin.close()
    now = time.monotonic()
    for partition, end in stalled.items():
        committed = found.get(partition)
        # A committed offset at the end: a previous owner decided everything, nothing waits.
        if committed is None or committed < end:
            start = committed or 0
            log.warning(
                "watchdog: events partition %s has records up to offset %s but nothing was decided here for %.0f s "
                "(last decided: %s); reading it again from offset %s",
                partition, end - 1, progress.after, progress.decided.get(partition), start,
            )
            tp = TP(settings.events_topic, partition)
            app.consumer.resume_partitions([tp])
            await app.consumer.seek(tp, start)
        progress.restart(partition, now, committed)


def install_responders(app: OffhoursApp, *, clock: Callable[[], float] = time.time) -> Outbox:
    """Add the responders to ``app`` on its own outbox topics, with on-call and claim links.

    The ledger table becomes ``app.deliveries``: the promise sweep expires its entries
    older than the retention (:mod:`streams.retention`).
    """
    outbox = install(
        app,
        app.stream_topics,
        app.settings,
        on_call=on_call_from(lambda: app.coverage.coverage),
        mode_at=mode_from(lambda: app.coverage.coverage),
        notify_secrets=notify_secrets_from(lambda: app.coverage.coverage),
        claim_link=claim_links(app.settings, clock),
        clock=clock,
        metrics=app.metrics,
    )
    app.deliveries = outbox.ledger_table  # type: ignore[attr-defined]
    return outbox


def start_promise_timers(app: OffhoursApp, *, sweep_every: timedelta = SWEEP_EVERY) -> PromiseTimers:
    """Start the escalation sweep and the handover at openings for ``app``, on the running loop.

    The timers plan from ``app.clock`` and from the coverage in use, and plan again on
    every coverage swap. Each worker sweeps and hands over the partitions it holds, so
    this runs on every worker, not only the leader; nothing here outlives a restart
    (the pending escalations and the backlog are in the tables).
    """

    async def on_opening(team: Team, opening_at: datetime) -> None:
        try:
            await hand_over(app, team, opening_at)
        except Exception:
            log.exception("handover of %s at %s failed", team.id, opening_at.isoformat())

    async def on_sweep(now: datetime) -> None:
        try:
            await sweep_promises(app, now)
        except Exception:
            # A broker hiccup must not stop the timers: the next sweep finds the same rows.
            log.exception("promise sweep failed; retrying at the next sweep")

    timers = PromiseTimers(
        app.coverage.coverage,
        on_opening=on_opening,
        on_sweep=on_sweep,
        sweep_every=sweep_every,
        clock=lambda: datetime.fromtimestamp(app.clock(), UTC),
    )
    app.coverage.on_swap(timers.plan)
    timers.start()
    return timers


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings,
    coverage: Coverage,
    *,
    decider: Callable[[Coverage], Decider] | None = None,
    reconcile: bool = True,
    ready_timeout: float = 60.0,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    sweep_every: timedelta | None = None,
    promises: bool = True,
) -> AsyncIterator[OffhoursApp]:
    """Create the topics, start the app and yield it once it is ready; stop it on exit.

    With ``settings.responders.deliver`` (the default) the responders run in this worker:
    acknowledgments go to the platforms, routes to the on-call staff (with signed claim
    links), and a failed acknowledgment is paged to whoever the coverage in use has on
    call. ``clock`` (POSIX seconds) is the responders', the metrics' and the promise
    timers' clock; ``sweep_every`` is how often the promises are swept (default
    ``settings.sweep_interval``). ``promises=False`` runs no promise timers (a replay
    decides past events: escalating or handing them over now would be wrong).
    """
    await create_topics(settings)
    app = create_app(settings, coverage, decider=decider, metrics=metrics, clock=clock)
    if settings.responders.deliver:
        install_responders(app, clock=clock)
    stop_reconciler = attach_reconciler(app) if reconcile else None
    attach_watchdog(app)  # on every broker: it fired on Apache Kafka too (deploy/README.md)
    await app.start()
    timers: PromiseTimers | None = None
    try:
        await asyncio.wait_for(app.tables.recovery.completed.wait(), ready_timeout)
        if promises:
            every = sweep_every if sweep_every is not None else timedelta(seconds=settings.sweep_interval)
            timers = app.promise_timers = start_promise_timers(app, sweep_every=every)
        yield app
    finally:
        if timers is not None:
            timers.shutdown()
        if stop_reconciler is not None:
            await stop_reconciler()
        await app.stop()


async def _serve(settings: Settings) -> int:
    from schedules import load_coverage

    coverage = load_coverage(settings.coverage_file)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with running_worker(settings, coverage) as app:

        @app.on_partitions_assigned.connect
        async def report(sender: object, assigned: object, **kwargs: object) -> None:
            print(f"ASSIGNED {input_partitions(app)}", flush=True)

        print("READY", flush=True)
        print(f"ASSIGNED {input_partitions(app)}", flush=True)
        await stopping.wait()
    return 0


def input_partitions(app: OffhoursApp) -> str:
    """The events-topic partitions this worker holds, as ``0,2`` (empty when none)."""
    topic = app.settings.events_topic
    held = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)
    return ",".join(map(str, held))


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if settings.broker_url is None:
        print("streams.worker needs OFFHOURS_BROKER_URL", file=sys.stderr)
        return 2
    import uvloop

    # uvloop: a no-op Faust agent relayed 30-70 % more events/s than on asyncio's loop,
    # side by side on the same broker (bench/README.md).
    return uvloop.run(_serve(settings))


if __name__ == "__main__":
    raise SystemExit(main())
