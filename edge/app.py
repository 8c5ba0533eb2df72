"""The webhook ingest application factory.

:func:`build_webhooks` makes a self-contained aiohttp application from the edge
settings and an :class:`~edge.sink.EventSink`. It holds no global state, so several
apps (tests, replicas, a combined service app) can live in one process. The ingest is
stateless apart from its dedupe memory: run as many replicas behind a balancer as
needed (see :mod:`edge.dedupe` for what that means for redeliveries).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

from aiohttp import web

from edge.actions import ActionSink
from edge.config import EdgeSettings
from edge.dedupe import RecentIds
from edge.ratelimit import TokenBuckets, rate_limit_middleware
from edge.sink import EventSink, ManagedSink
from edge.webhooks import INGEST, WebhookIngest, add_routes
from records.wire import SocialEvent
from schedules import Coverage


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_webhooks(
    settings: EdgeSettings,
    sink: EventSink,
    *,
    now: Callable[[], datetime] = _utc_now,
    clock: Callable[[], float] = time.monotonic,
    manage_sink: bool = True,
    prefix: str = "/webhooks",
    on_produced: Callable[[Sequence[SocialEvent]], None] | None = None,
    known_account: Callable[[str], bool | None] | None = None,
    coverage: Callable[[], Coverage | None] | None = None,
    actions: ActionSink | None = None,
    draining: Callable[[], bool] | None = None,
) -> web.Application:
    """The webhook routes of :mod:`edge.webhooks` on a new application.

    ``now`` is the wall clock (stamped on events whose payload has no time), ``clock``
    the monotonic clock of the dedupe, of the per-address rate limit
    (:mod:`edge.ratelimit`: ``rate_per_second``, ``rate_burst``; beyond, 429) and of the
    refusal log (one line per webhook per minute, with the count of the others). When ``manage_sink`` is true and the sink has
    ``start``/``stop`` (:class:`~edge.sink.ManagedSink`, e.g. ``KafkaEventSink``), the
    app starts it on startup and stops it on cleanup; otherwise the caller owns it.
    The ingest state is at ``app[edge.webhooks.INGEST]`` (its ``stats`` included).
    ``on_produced``, when given, is called with the events of each request once they
    are published (the service counts them by channel in its metrics).
    ``known_account``, when given, tells whether a team of the coverage in force lists
    an account (None: no coverage known yet); an event for an account no team lists is
    produced anyway (the triage rejects it with the reason), logged and counted in
    ``stats.unknown_accounts``. Without it only an unmapped platform id is reported.
    ``coverage`` (the coverage in force, None while none is known) and ``actions`` (where
    claims and answered marks go; the caller starts and stops it) let the Chatwoot
    webhook turn a desk's assignments and resolutions into staff actions; without them
    it skips those, with the reason. ``draining``, when given and true, refuses every
    request with 503 and ``Retry-After`` before anything else (:func:`draining_middleware`:
    the service is stopping; the platforms send again later, so nothing is lost).

    Routes are ``{prefix}/meta``, ``{prefix}/x``, ``{prefix}/telegram``, ``{prefix}/generic``
    and ``{prefix}/chatwoot``: serve the app as it is (``offhours ingest``), or mount it in
    the service with ``root.add_subapp("/webhooks", build_webhooks(..., prefix=""))``.
    """
    recent = RecentIds(settings.dedupe_ttl, settings.dedupe_capacity, clock)
    ingest = WebhookIngest(
        settings, sink, recent, now, on_produced=on_produced, clock=clock, known_account=known_account,
        coverage=coverage, actions=actions,
    )
    buckets = TokenBuckets(settings.rate_per_second, settings.rate_burst, clock)
    middlewares = [rate_limit_middleware(buckets, ingest.refusals)]
    if draining is not None:
        middlewares.insert(0, draining_middleware(draining))
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app[INGEST] = ingest
    if manage_sink and isinstance(sink, ManagedSink):
        app.cleanup_ctx.append(_sink_context(sink))
    add_routes(app, prefix)
    return app


DRAINING_RETRY_AFTER = 5
"""Seconds a webhook refused during a stop asks the platform to wait before sending again."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def draining_middleware(draining: Callable[[], bool], retry_after: int = DRAINING_RETRY_AFTER) -> Callable[..., Awaitable[web.StreamResponse]]:
    """503 with ``Retry-After`` for every request while ``draining()`` (a stop under way):
    nothing new is accepted, and the platform retries later, on this or another process."""

    @web.middleware
    async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
        if draining():
            return web.json_response(
                {"error": "stopping: not accepting webhooks; send again later"},
                status=503, headers={"Retry-After": str(retry_after)},
            )
        return await handler(request)

    return refuse_while_draining


def _sink_context(
    sink: ManagedSink,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def sink_lifetime(app: web.Application) -> AsyncIterator[None]:
        await sink.start()
        try:
            yield
        finally:
            await sink.stop()

    return sink_lifetime
