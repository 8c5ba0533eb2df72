"""Fuzz the webhook edge: random signed bodies for a number of seconds, count the 5xx.

Run:  python -m bench.fuzz_webhooks [--seconds 150] [--seed N] [--concurrency 4] [--url http://127.0.0.1:PORT]

Each request is a documented body of one webhook (Messenger, Instagram, Facebook and
Instagram comments, WhatsApp, X, Telegram, generic) with random mutations (wrong types,
huge and negative numbers, extreme dates, missing fields, deep nesting, unicode; see
``tests/support/webhook_mutations.py``), signed the way its platform signs it, so every
request passes the signature check and the edge has to cope with the content. A
correctly signed body must be answered 200 (bad items skipped) or 400 (unusable body);
413 is counted apart (the mutation made the body larger than ``max_body_bytes``).

Without ``--url`` a local edge is started in a child process on 127.0.0.1 (the
webhooks app of ``edge.app.build_webhooks``, rate limit off, a sink that writes each
event as JSON as the Kafka sink does and refuses what Kafka or the triage worker
would). With ``--url`` the target must be on this machine (loopback only) and
configured with the secrets of ``webhook_mutations`` (``--print-env`` prints them).
The first 5xx bodies are written to ``--save`` for replay.

Prints the count of requests, of each status and of 5xx answers; exits 1 when there
was any 5xx or connection failure.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.webhook_mutations import (  # noqa: E402  (the repository root is on the path now)
    WEBHOOKS,
    KafkaLikeSink,
    edge_settings_fields,
    signed_body,
)

MAX_BODY_BYTES = 1024 * 1024
KEPT_FAILURES = 20


class CountingSink(KafkaLikeSink):
    """Checks every event as :class:`KafkaLikeSink` does, counts it and keeps nothing (bounded memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.produced = 0

    async def publish(self, events):  # type: ignore[no-untyped-def]
        await super().publish(events)
        self.produced += len(events)
        self.events.clear()


async def serve() -> None:
    """The child: the webhooks on 127.0.0.1, a free port; prints ``READY <port>``, stops on stdin EOF."""
    import logging

    from edge.app import build_webhooks
    from edge.config import EdgeSettings

    # The mutated bodies name accounts nobody maps: one warning each would fill the terminal.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    settings = EdgeSettings(**edge_settings_fields(), max_body_bytes=MAX_BODY_BYTES)
    runner = web.AppRunner(build_webhooks(settings, CountingSink()), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"READY {runner.addresses[0][1]}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


def loopback_only(url: str) -> str:
    """``url`` without a trailing slash when its host is a loopback address; raises otherwise."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"fuzz_webhooks: {url} is not on this machine; only loopback targets are fuzzed")
    return url.rstrip("/")


async def fuzz(base_url: str, seconds: float, seed: int, concurrency: int, save: Path | None) -> tuple[Counter[str], int]:
    """Post random signed bodies to ``base_url`` for ``seconds``; the statuses seen and the 5xx count."""
    statuses: Counter[str] = Counter()
    failures: list[tuple[str, bytes, int, str]] = []
    deadline = time.monotonic() + seconds
    names = sorted(WEBHOOKS)

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        rng = random.Random(seed * 1000 + n)
        while time.monotonic() < deadline:
            webhook = WEBHOOKS[rng.choice(names)]
            body, headers = signed_body(rng, webhook)
            try:
                async with session.post(base_url + webhook.path, data=body, headers=headers) as response:
                    answer = await response.text()
                    statuses[f"{webhook.name} {response.status}"] += 1
                    if response.status >= 500 and len(failures) < KEPT_FAILURES:
                        failures.append((webhook.name, body, response.status, answer[:300]))
            except aiohttp.ClientError as exc:
                statuses[f"{webhook.name} connection error {type(exc).__name__}"] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(n, session) for n in range(concurrency)))
    if save is not None and failures:
        save.mkdir(parents=True, exist_ok=True)
        for i, (name, body, status, answer) in enumerate(failures):
            (save / f"{i:02d}-{name}-{status}.json").write_bytes(body)
            print(f"  {status} {name}: {answer}", file=sys.stderr)
    server_errors = sum(count for key, count in statuses.items() if key.split()[-1].startswith("5"))
    return statuses, server_errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="how long to post (default 150)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="random seed (default: the time)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--url", help="a running edge on this machine (default: start one on 127.0.0.1)")
    parser.add_argument("--save", type=Path, default=Path("fuzz-failures"), help="folder for the bodies answered 5xx")
    parser.add_argument("--print-env", action="store_true", help="print the settings a --url target needs and exit")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve())
        return 0
    if args.print_env:
        fields = edge_settings_fields()
        for name in ("meta_app_secret", "meta_verify_token", "x_consumer_secret", "telegram_secret_token",
                     "telegram_bot", "generic_secret"):
            print(f"export OFFHOURS_EDGE__{name.upper()}='{fields[name]}'")
        print("export OFFHOURS_EDGE__RATE_PER_SECOND=0")
        return 0

    child = None
    try:
        if args.url:
            base_url = loopback_only(args.url)
        else:
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.fuzz_webhooks", "--serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
            )
            assert child.stdout is not None
            ready = child.stdout.readline().split()
            if ready[:1] != ["READY"]:
                raise SystemExit("fuzz_webhooks: the local edge did not start")
            base_url = f"http://127.0.0.1:{ready[1]}"
        print(f"fuzzing {base_url} for {args.seconds:g} s, seed {args.seed}, {args.concurrency} in flight",
              file=sys.stderr, flush=True)
        started = time.monotonic()
        statuses, server_errors = asyncio.run(fuzz(base_url, args.seconds, args.seed, args.concurrency, args.save))
        elapsed = time.monotonic() - started
    finally:
        if child is not None:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
    requests = sum(statuses.values())
    errors = sum(count for key, count in statuses.items() if "connection error" in key)
    print(f"requests: {requests} in {elapsed:.0f} s ({requests / max(elapsed, 1e-9):.0f}/s), seed {args.seed}")
    for key, count in sorted(statuses.items()):
        print(f"  {key}: {count}")
    print(f"5xx: {server_errors}")
    print(f"connection errors: {errors}")
    if child is not None and child.returncode not in (0, None):
        print(f"local edge exited with {child.returncode}")
        return 1
    return 1 if server_errors or errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
