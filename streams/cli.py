"""The ``replay``, ``run`` and ``ingest`` subcommands of ``offhours`` (CONTRACT §3).

Settings are built here once, from the environment and the flags, and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from streams.settings import Settings

EXIT_USAGE = 2
EXIT_BROKER = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay``, ``run`` and ``ingest`` to the ``offhours`` command."""
    replay = subparsers.add_parser(
        "replay",
        help="run events through the real pipeline and print one decision per line",
        description=(
            "Runs the events of EVENTS (JSON Lines, one CONTRACT §2 event per line) through "
            "the real stream pipeline (the embedded broker unless OFFHOURS_BROKER_URL is set), "
            "taking each event's `at` as the clock, and prints one decision JSON per input "
            "line, in input order. Exit 2 when a file cannot be read or the coverage is invalid."
        ),
    )
    replay.add_argument("coverage", type=Path, metavar="FILE", help="the coverage file (YAML)")
    replay.add_argument("events", type=Path, metavar="EVENTS.jsonl", help="one event per line")
    replay.add_argument("-v", "--verbose", action="store_true", help="log the pipeline to stderr")
    replay.set_defaults(handler=_replay)

    run = subparsers.add_parser(
        "run",
        help="run the service: broker (embedded unless configured), stream worker, web server",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Runs offhours: the embedded broker unless OFFHOURS_BROKER_URL is set, the triage\n"
            "worker and the web server: /healthz, /readyz, /metrics, the webhooks under\n"
            "/webhooks and the operations API under /api/v1. It prints where each listens.\n"
            "Settings come from OFFHOURS_* environment variables; flags override them.\n"
            "Stops cleanly on Ctrl-C or SIGTERM."
        ),
        epilog=_WEB_SETTINGS,
    )
    _service_arguments(run)
    run.add_argument("--no-web", action="store_true", help="run without the web server")
    run.set_defaults(handler=_run)

    ingest = subparsers.add_parser(
        "ingest",
        help="serve the webhooks and the operations API only (no stream worker)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Serves the webhooks (/webhooks/generic, /meta, /x, /telegram), the operations API\n"
            "(/api/v1), /healthz, /readyz and /metrics, with no stream worker: it holds no\n"
            "partitions and no state, so run as many replicas as needed behind a balancer,\n"
            "beside 'offhours run' (or 'python -m streams.worker') processes that decide the\n"
            "events. It needs the broker those workers use (--broker or OFFHOURS_BROKER_URL);\n"
            "without one it starts an embedded broker, which is only good for a demo: nothing\n"
            "else can reach it. The coverage file seeds the config topic when that is empty.\n"
            "It prints where it listens; stops on Ctrl-C or SIGTERM."
        ),
        epilog=_WEB_SETTINGS,
    )
    _service_arguments(ingest)
    ingest.set_defaults(handler=_ingest)


_WEB_SETTINGS = """\
settings (environment):
  OFFHOURS_EDGE__GENERIC_SECRET    HMAC key of /webhooks/generic (X-Offhours-Signature: sha256=<hex>)
  OFFHOURS_EDGE__META_APP_SECRET   Meta (Messenger, Instagram, WhatsApp); see docs/operations.md
  OFFHOURS_OPS__TOKENS             API bearer tokens by identity, e.g. '{"ops:anna": "s3cr3t"}'
  OFFHOURS_OPS__LINK_SECRET        key of the signed claim links (same on every process)
  OFFHOURS_OPS__PUBLIC_BASE_URL    where people reach the service (start of the claim links)
  OFFHOURS_EVENTS_TOPIC, OFFHOURS_CONFIG_TOPIC, OFFHOURS_APP_ID ...  see README

example:
  OFFHOURS_EDGE__GENERIC_SECRET=dev OFFHOURS_OPS__TOKENS='{"ops:me": "t0k"}' \\
    offhours run --coverage examples/coverage.yaml --port 8080
"""


def _service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coverage", type=Path, metavar="FILE", help="the coverage file (YAML)")
    parser.add_argument("--broker", metavar="URL", help="kafka://host:9092 (default: embedded broker)")
    parser.add_argument("--host", help="web server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="web server port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--idempotent-producer",
        action="store_true",
        help="the webhooks produce with an idempotent producer (Apache Kafka; Tansu, also "
        "the embedded broker, refuses it); without it a producer retry may repeat an event, "
        "which the triage decides once by its id",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _replay(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from streams.broker import BrokerStartError
    from streams.replay import ReplayError, replay_file

    _logging(args.verbose)
    settings = Settings()
    try:
        asyncio.run(replay_file(settings, args.coverage, args.events, out=sys.stdout, err=sys.stderr))
    except ReplayError as exc:
        print(f"offhours replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BrokerStartError, KafkaError) as exc:
        print(f"offhours replay: broker {settings.broker_url or '(embedded)'}: {exc}", file=sys.stderr)
        return EXIT_BROKER
    return 0


def _run(args: argparse.Namespace) -> int:
    from streams.service import run_service

    def service(settings: Settings, idempotent: bool) -> Coroutine[Any, Any, int]:
        return run_service(settings, web_enabled=not args.no_web, out=sys.stdout, idempotent=idempotent)

    return _serve("run", args, service)


def _ingest(args: argparse.Namespace) -> int:
    from streams.service import run_ingest

    def service(settings: Settings, idempotent: bool) -> Coroutine[Any, Any, int]:
        return run_ingest(settings, out=sys.stdout, idempotent=idempotent)

    return _serve("ingest", args, service)


def _serve(
    command: str,
    args: argparse.Namespace,
    service: Callable[[Settings, bool], Coroutine[Any, Any, int]],
) -> int:
    from aiokafka.errors import KafkaError

    from streams.broker import BrokerStartError
    from streams.service import ServiceError

    _logging(args.verbose)
    settings = Settings().with_overrides(
        coverage_file=args.coverage, broker_url=args.broker, web_host=args.host, web_port=args.port
    )
    if args.idempotent_producer and settings.embedded:
        print(f"offhours {command}: --idempotent-producer needs a configured broker (--broker)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(service(settings, args.idempotent_producer))
    except ServiceError as exc:
        print(f"offhours {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BrokerStartError, KafkaError) as exc:
        print(f"offhours {command}: broker {settings.broker_url or '(embedded)'}: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except OSError as exc:
        # The web port is taken or the address is not ours.
        print(f"offhours {command}: {exc}", file=sys.stderr)
        return EXIT_BROKER
