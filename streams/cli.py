"""The ``replay``, ``run``, ``ingest`` and ``decisions`` subcommands of ``offhours`` (CONTRACT §3).

Settings are built here once, from the environment and the flags, and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from streams.settings import Settings

EXIT_USAGE = 2
EXIT_BROKER = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay``, ``run``, ``ingest`` and ``decisions`` to the ``offhours`` command."""
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

    decisions = subparsers.add_parser(
        "decisions",
        help="print the decisions from the decisions topic as JSON lines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Prints the decisions on the decisions topic, one JSON object per line (CONTRACT §4),\n"
            "and exits; with --follow it prints each new decision as it is made until Ctrl-C.\n"
            "It joins no consumer group and commits nothing, so it never disturbs the workers.\n"
            "'offhours run' prints this command with its broker on the 'watch:' line.\n"
            "Exit 1 when the broker cannot be reached or the topic does not exist, 2 without a broker."
        ),
        epilog=(
            "example:\n"
            "  offhours decisions --broker kafka://127.0.0.1:40213 --follow\n"
            "  offhours decisions --broker kafka://127.0.0.1:40213 --conversation fb:PAGE_111:PSID_222"
        ),
    )
    decisions.add_argument(
        "--broker", metavar="URL", help="kafka://host:9092, as 'offhours run' prints it (default: OFFHOURS_BROKER_URL)"
    )
    decisions.add_argument("--topic", help="the decisions topic (default: OFFHOURS_DECISIONS_TOPIC or offhours.decisions)")
    decisions.add_argument("--follow", action="store_true", help="keep printing new decisions until Ctrl-C")
    decisions.add_argument(
        "--from-beginning",
        action="store_true",
        help="with --follow, print the decisions already on the topic first (without --follow they always are)",
    )
    decisions.add_argument("--conversation", metavar="C", help="only the decisions of this conversation")
    decisions.set_defaults(handler=_decisions)


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


def _decisions(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from streams.watch import WatchError, watch_decisions

    _logging(False)
    # aiokafka logs each failed connection; the one-line error below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    settings = Settings().with_overrides(broker_url=args.broker, decisions_topic=args.topic)
    if settings.embedded:
        print(
            "offhours decisions: no broker: pass --broker URL (the 'broker:' line of 'offhours run') "
            "or set OFFHOURS_BROKER_URL",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def watch() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await watch_decisions(
            settings.bootstrap_servers,
            settings.decisions_topic,
            out=sys.stdout,
            err=sys.stderr,
            follow=args.follow,
            from_beginning=args.from_beginning,
            conversation=args.conversation,
            stopping=stopping,
        )
        return 0

    try:
        return asyncio.run(watch())
    except WatchError as exc:
        print(f"offhours decisions: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except KafkaError as exc:
        print(f"offhours decisions: broker {settings.broker_url}: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other line tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter's exit flush needs a file
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
