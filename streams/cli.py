"""The ``replay`` and ``run`` subcommands of ``offhours`` (CONTRACT §3).

Settings are built here once, from the environment and the flags, and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from streams.settings import Settings

EXIT_USAGE = 2
EXIT_BROKER = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay`` and ``run`` to the ``offhours`` command."""
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
        description=(
            "Runs offhours: the embedded broker unless OFFHOURS_BROKER_URL is set, the triage "
            "worker and the web server (/healthz, /readyz and the HTTP edge). Settings come "
            "from OFFHOURS_* environment variables; flags override them. Stops cleanly on "
            "Ctrl-C or SIGTERM."
        ),
    )
    run.add_argument("--coverage", type=Path, metavar="FILE", help="the coverage file (YAML)")
    run.add_argument("--broker", metavar="URL", help="kafka://host:9092 (default: embedded broker)")
    run.add_argument("--host", help="web server address (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="web server port (default 8080)")
    run.add_argument("--no-web", action="store_true", help="run without the web server")
    run.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    run.set_defaults(handler=_run)


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
    from aiokafka.errors import KafkaError

    from streams.broker import BrokerStartError
    from streams.service import ServiceError, run_service

    _logging(args.verbose)
    settings = Settings().with_overrides(
        coverage_file=args.coverage, broker_url=args.broker, web_host=args.host, web_port=args.port
    )
    try:
        return asyncio.run(run_service(settings, web_enabled=not args.no_web, out=sys.stdout))
    except ServiceError as exc:
        print(f"offhours run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BrokerStartError, KafkaError) as exc:
        print(f"offhours run: broker {settings.broker_url or '(embedded)'}: {exc}", file=sys.stderr)
        return EXIT_BROKER
