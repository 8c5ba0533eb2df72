"""The console's pages under load (issue 19): server time of each page with 20 teams and
10,000 open conversations, against the target of each page under 200 ms.

Run:  python -m bench.console [--teams N] [--conversations N] [--requests N] [--quick]

The service is composed as ``offhours run`` composes its console, from the same public
functions: the coverage in a :class:`edge.config_store.MemoryConfigStore`, a
:class:`console.projection.Projection` fed the way the topics feed it (every event
through :meth:`Projection.apply_event`: the worker's own ``Triage.decide``), and
:func:`console.web.build_console` mounted with :func:`console.web.mount_console` on a
real aiohttp server on 127.0.0.1, signed in with an operate token. The clock is fixed
(Monday 2026-11-23 20:00 in Rome), so every run sees the same queue.

- The coverage has ``--teams`` teams made from the two teams of
  ``examples/coverage.yaml``, taken in turn: each copy gets its own accounts and one of
  ten time zones (with that country's holidays), so the teams are in different modes now.
- ``--conversations`` open conversations, each one customer message on one of the
  teams' accounts (seeded: channel from the account, mostly direct messages), spread
  over the four days before the clock; plus a tenth as many answered conversations (a
  customer message and a staff ``agent_reply``), so the reply-times page has first
  responses to show.
- Each page is requested ``--requests`` times, one at a time, after two warm-up
  requests. The server time is taken by a middleware of the root application around the
  whole handler (the page built and rendered, the session checked); the round trip is
  what the client waited, body read included.

Prints a markdown table (median and p95 of each) with the target and met/missed per page:
a page meets it when its p95 server time is under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import yaml
from aiohttp import web

from bench.common import (
    EXAMPLE_COVERAGE,
    PREFIX_OF_CHANNEL,
    SEED,
    TEXTS,
    channel_of,
    machine_line,
)
from console.projection import Projection
from console.web import build_console, mount_console
from edge.config_store import MemoryConfigStore
from edge.ops_config import Principal

TARGET_MS = 200.0
ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 11, 23, 20, 0, tzinfo=ROME)
"""Monday evening: reduced hours in Rome, the middle of the day in New York, night in Tokyo."""
SPREAD = timedelta(days=4)
TOKEN = "bench-console-operate-token"
SESSION_SECRET = "bench-console-session-secret"
ZONES = (
    ("Europe/Rome", "IT"), ("America/New_York", "US"), ("Europe/London", "GB"), ("Europe/Berlin", "DE"),
    ("America/Los_Angeles", "US"), ("Asia/Tokyo", "JP"), ("Australia/Sydney", "AU"),
    ("America/Sao_Paulo", "BR"), ("Asia/Kolkata", "IN"), ("Europe/Madrid", "ES"),
)
PAGES = (
    ("now", "/console/"),
    ("timeline (14 days)", "/console/timeline"),
    ("preview (a decision)", "/console/preview?at=2026-12-24T02:00"),
    ("queue (all teams)", "/console/queue"),
    ("queue (one team)", "/console/queue?team=care-it-t01"),
    ("overrides", "/console/overrides"),
    ("reply times", "/console/reply-times"),
)
WARM_UP = 2


class FixedClock:
    """The console's clock, stopped at :data:`NOW`."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def coverage_text(teams: int, example: Path = EXAMPLE_COVERAGE) -> str:
    """A coverage file of ``teams`` teams shaped like the example's, in turn, each with its own accounts and zone."""
    shapes = list(yaml.safe_load(example.read_text(encoding="utf-8"))["teams"].items())
    document: dict[str, Any] = {"teams": {}}
    for n in range(teams):
        name, shape = shapes[n % len(shapes)]
        zone, country = ZONES[n % len(ZONES)]
        team = orjson.loads(orjson.dumps(shape))  # a deep copy
        tag = f"t{n + 1:02d}"
        team["name"] = f"{team.get('name', name)} {tag}"
        team["timezone"] = zone
        team["accounts"] = [_renamed(account, tag) for account in shape["accounts"]]
        team["holidays"] = {**team.get("holidays", {}), "country": country, "subdivision": None}
        document["teams"][f"{name}-{tag}"] = team
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _renamed(account: str, tag: str) -> str:
    """``acme.it.whatsapp`` -> ``acme.t03.whatsapp``, ``acme_it_x`` -> ``acme_t03_x`` (channel kept)."""
    separator = "." if "." in account else "_"
    first, _, rest = account.partition(separator)
    return separator.join((first, tag, rest.partition(separator)[2]))


def events(accounts: Sequence[str], open_count: int, answered: int, seed: int = SEED) -> list[bytes]:
    """``open_count`` one-message conversations and ``answered`` conversations a staff member replied to."""
    rng = random.Random(seed)
    span = int(SPREAD.total_seconds())
    raws = []
    for n in range(open_count + answered):
        account = rng.choice(accounts)
        channel = channel_of(account)
        prefix = PREFIX_OF_CHANNEL.get(channel, "gen")
        at = NOW - timedelta(seconds=rng.randrange(60, span))
        event = {
            "id": f"{prefix}:m_{n}",
            "account": account,
            "channel": channel,
            "kind": rng.choices(("dm", "comment", "mention"), weights=(80, 12, 8))[0],
            "conversation": f"{prefix}:{account}:user_{n}",
            "author": {"id": f"user_{n}", "name": f"Customer {n}", "followers": rng.randrange(50_000)},
            "text": rng.choice(TEXTS),
            "lang": None,
            "at": at.isoformat(),
            "in_reply_to": None,
        }
        raws.append(orjson.dumps(event))
        if n >= open_count:
            reply = {
                **event, "id": f"{prefix}:r_{n}", "kind": "agent_reply", "author": {"id": "staff_1", "name": "Marta Rossi"},
                "text": "Ciao! Ci pensiamo noi.", "at": min(at + timedelta(minutes=rng.randint(2, 600)), NOW).isoformat(),
            }
            raws.append(orjson.dumps(reply))
    return raws


@dataclass
class Page:
    """One page's measurements (milliseconds) and its answer."""

    name: str
    path: str
    server_ms: list[float]
    round_trip_ms: list[float]
    status: int
    size: int

    def met(self) -> bool:
        return self.status == 200 and percentile(self.server_ms, 95) < TARGET_MS


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile, nearest rank."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def timing_middleware(samples: list[float]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Appends the server time of each request (the whole handler, sub-application middlewares included) to ``samples``.

    The sample is taken before the response is sent, so a client that waits for each
    answer finds its request's time last."""

    @web.middleware
    async def timed(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            samples.append((time.perf_counter() - started) * 1000)

    return timed


async def measure(teams: int, conversations: int, requests: int, out=sys.stdout) -> list[Page]:
    """Build the console, serve it on 127.0.0.1 and time every page; print the report."""
    clock = FixedClock()
    built = time.perf_counter()
    store = MemoryConfigStore(coverage_text(teams), clock=clock, filename="coverage.yaml")
    coverage = store.coverage()
    projection = Projection(store.coverage)
    accounts = [account for team in coverage.teams.values() for account in team.accounts]
    for raw in events(accounts, conversations, conversations // 10):
        projection.apply_event(raw)
    waiting = sum(1 for _ in projection.open_conversations())
    fed = time.perf_counter() - built

    samples: list[float] = []
    root = web.Application(middlewares=[timing_middleware(samples)])
    mount_console(root, build_console(store, projection, {TOKEN: Principal("ops:bench", "operate")}, SESSION_SECRET,
                                      clock=clock))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    pages = []
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(f"{base}/console/login", data={"token": TOKEN}) as answer:
                if answer.status != 200 or answer.url.path != "/console/":
                    raise RuntimeError(f"sign-in failed: {answer.status} {answer.url}")
            for name, path in PAGES:
                server, trips = [], []
                status = size = 0
                for n in range(WARM_UP + requests):
                    started = time.perf_counter()
                    async with session.get(f"{base}{path}", allow_redirects=False) as answer:
                        body = await answer.read()
                        status, size = answer.status, len(body)
                    if n >= WARM_UP:
                        trips.append((time.perf_counter() - started) * 1000)
                        server.append(samples[-1])
                pages.append(Page(name, path, server, trips, status, size))
    finally:
        await runner.cleanup()

    print("## Console pages (issue 19)", file=out)
    print(file=out)
    print(f"Machine: {machine_line()}.", file=out)
    print(file=out)
    print(
        f"{len(coverage.teams)} teams ({len(accounts)} accounts), {waiting:,} open conversations and "
        f"{len(projection.answers):,} first responses in the projection ({projection.applied:,} events applied "
        f"in {fed:.1f} s); {requests} requests per page, one at a time, after {WARM_UP} warm-up requests, "
        f"through aiohttp on 127.0.0.1, signed in. Target: each page under {TARGET_MS:.0f} ms "
        "(met: p95 server time under it).",
        file=out,
    )
    print(file=out)
    print("| page | server median | server p95 | round trip median | round trip p95 | size | target | |", file=out)
    print("|---|---:|---:|---:|---:|---:|---:|---|", file=out)
    for page in pages:
        verdict = "met" if page.met() else ("missed" if page.status == 200 else f"missed (HTTP {page.status})")
        print(
            f"| {page.name} `{page.path}` | {statistics.median(page.server_ms):.1f} ms | "
            f"{percentile(page.server_ms, 95):.1f} ms | {statistics.median(page.round_trip_ms):.1f} ms | "
            f"{percentile(page.round_trip_ms, 95):.1f} ms | {page.size / 1024:,.0f} KiB | < {TARGET_MS:.0f} ms | {verdict} |",
            file=out,
        )
    print(file=out, flush=True)
    return pages


def run(teams: int = 20, conversations: int = 10_000, requests: int = 30, out=sys.stdout) -> list[Page]:
    return asyncio.run(measure(teams, conversations, requests, out=out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=20, help="teams in the coverage (default 20)")
    parser.add_argument("--conversations", type=int, default=10_000, help="open conversations (default 10,000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page (default 30)")
    parser.add_argument("--quick", action="store_true", help="10 requests per page")
    args = parser.parse_args(argv)
    run(args.teams, args.conversations, 10 if args.quick else args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
