"""``offhours run``: broker, triage worker and web server in one process.

Start order: the embedded broker (unless ``settings.broker_url`` is set), the triage
worker (topics, app, reconciliation on the leader), then the web server. Stop order is
the reverse, on Ctrl-C or SIGTERM: the web server stops accepting requests first, then
the worker finishes the events in hand, flushes its producer and commits, and the
broker goes last, so an event accepted before the signal is decided or left
uncommitted for the next worker, never dropped half-way.

Web routes: ``/healthz`` (the process is up) and ``/readyz`` (the worker holds its
partitions and its table is recovered). The HTTP edge mounts its routes in
:func:`mount_edge`, the one place where the service composes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import TextIO

from aiohttp import web

from schedules import Coverage

from streams.app import OffhoursApp
from streams.broker import EmbeddedBroker
from streams.settings import Settings
from streams.worker import running_worker

PIPELINE: web.AppKey[OffhoursApp] = web.AppKey("pipeline", OffhoursApp)


class ServiceError(Exception):
    """The service cannot start (invalid coverage, unreadable file); the message says why."""


def load_coverage_or_fail(settings: Settings) -> Coverage:
    """The coverage of ``settings.coverage_file``, or :class:`ServiceError` listing the problems."""
    from schedules import CoverageInvalid, load_coverage

    try:
        return load_coverage(settings.coverage_file)
    except CoverageInvalid as exc:
        raise ServiceError(f"invalid coverage file {settings.coverage_file}:\n{exc}") from None
    except OSError as exc:
        raise ServiceError(
            f"cannot read coverage file {settings.coverage_file}: {exc.strerror or exc} "
            "(set --coverage FILE or OFFHOURS_COVERAGE_FILE)"
        ) from None


async def healthz(request: web.Request) -> web.Response:
    """Always 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the worker is ready to decide events, 503 while starting or rebalancing."""
    app = request.app[PIPELINE]
    ready = app.tables.recovery.completed.is_set() and not app.rebalancing
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def mount_edge(root: web.Application, settings: Settings, pipeline: OffhoursApp) -> None:
    """The one place where the HTTP edge (webhooks, operations API) joins the service.

    The edge builds its own aiohttp application(s) from ``settings.edge`` and adds them
    to ``root`` here (``root.add_subapp`` or ``root.add_routes``). Until it does, the
    service serves the health routes only.
    """


def build_web(settings: Settings, pipeline: OffhoursApp) -> web.Application:
    """The service's aiohttp application: health routes plus the HTTP edge."""
    root = web.Application()
    root[PIPELINE] = pipeline
    root.router.add_get("/healthz", healthz)
    root.router.add_get("/readyz", readyz)
    mount_edge(root, settings, pipeline)
    return root


@contextlib.asynccontextmanager
async def broker_for(settings: Settings) -> AsyncIterator[Settings]:
    """``settings`` with a broker: the configured one, or a started embedded one."""
    if not settings.embedded:
        yield settings
        return
    async with EmbeddedBroker() as broker:
        yield settings.with_overrides(broker_url=broker.url)


async def run_service(settings: Settings, *, web_enabled: bool = True, out: TextIO) -> int:
    """Run until SIGINT or SIGTERM; returns the exit code."""
    coverage = load_coverage_or_fail(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    async with broker_for(settings) as live, running_worker(live, coverage) as pipeline:
        runner: web.AppRunner | None = None
        try:
            print(f"broker:   {live.broker_url}{' (embedded)' if settings.embedded else ''}", file=out)
            print(f"coverage: {live.coverage_file}", file=out)
            for team_id, team in sorted(coverage.teams.items()):
                print(f"team:     {team_id} {team.timezone} ({', '.join(team.accounts)})", file=out)
            print(f"topics:   {live.events_topic} -> {live.decisions_topic}", file=out)
            if web_enabled:
                runner = web.AppRunner(build_web(live, pipeline))
                await runner.setup()
                site = web.TCPSite(runner, live.web_host, live.web_port)
                await site.start()
                print(f"web:      http://{live.web_host}:{live.web_port} (/healthz, /readyz)", file=out)
            print("ready; Ctrl-C to stop", file=out, flush=True)
            await stopping.wait()
            print("stopping", file=out, flush=True)
        finally:
            if runner is not None:
                await runner.cleanup()
    return 0
