"""The ``replay``, ``run``, ``ingest``, ``decisions`` and ``sla`` subcommands of ``offhours`` (README: Command line).

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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from brokers.client import ClientOptions, client_options
from brokers.positions import seek_to_beginning
from streams.settings import Settings

if TYPE_CHECKING:
    from edge.config_store import CoverageInForce
    from promises.sla import ResponseTracker

EXIT_USAGE = 2
EXIT_BROKER = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay``, ``run``, ``ingest``, ``decisions`` and ``sla`` to the ``offhours`` command."""
    replay = subparsers.add_parser(
        "replay",
        help="run events through the real pipeline and print one decision per line",
        description=(
            "Runs the events of EVENTS (JSON Lines, one event per line; README: Events) through "
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
            "Stops on Ctrl-C or SIGTERM without losing what it accepted: the webhooks answer 503\n"
            "at once, what was accepted is decided and delivered for up to OFFHOURS_DRAIN_TIMEOUT\n"
            "seconds (20) and the rest is kept for the next start (README: Stopping)."
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
            "Serves the webhooks (/webhooks/generic, /meta, /x, /telegram, /chatwoot), the\n"
            "operations API (/api/v1), /healthz, /readyz and /metrics, with no stream worker:\n"
            "it holds no partitions and no state, so run as many replicas as needed behind a balancer,\n"
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
            "Prints the decisions on the decisions topic, one JSON object per line (README: Decisions),\n"
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

    _register_sla(subparsers)


_WEB_SETTINGS = """\
settings (environment):
  OFFHOURS_EDGE__GENERIC_SECRET    HMAC key of /webhooks/generic (X-Offhours-Signature: sha256=<hex>)
  OFFHOURS_EDGE__META_APP_SECRET   Meta (Messenger, Instagram, WhatsApp); see docs/operations.md
  OFFHOURS_OPS__TOKENS             API bearer tokens by identity, e.g. '{"ops:anna": "s3cr3t"}'
  OFFHOURS_OPS__LINK_SECRET        key of the signed claim links (same on every process)
  OFFHOURS_OPS__PUBLIC_BASE_URL    where people reach the service (start of the claim links)
  OFFHOURS_EVENTS_TOPIC, OFFHOURS_CONFIG_TOPIC, OFFHOURS_APP_ID ...  see README

example:
  OFFHOURS_EDGE__GENERIC_SECRET=dev-generic-secret OFFHOURS_OPS__TOKENS='{"ops:me": "t0k"}' \\
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

    from brokers.tansu import BrokerStartError
    from offhours.replay import ReplayError, replay_file

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

    from brokers.decisions_tail import WatchError, watch_decisions

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
            client_options(settings),
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
    from offhours.service import run_service

    def service(settings: Settings, idempotent: bool) -> Coroutine[Any, Any, int]:
        return run_service(settings, web_enabled=not args.no_web, out=sys.stdout, idempotent=idempotent)

    return _serve("run", args, service)


def _ingest(args: argparse.Namespace) -> int:
    from offhours.service import run_ingest

    def service(settings: Settings, idempotent: bool) -> Coroutine[Any, Any, int]:
        return run_ingest(settings, out=sys.stdout, idempotent=idempotent)

    return _serve("ingest", args, service)


def _serve(
    command: str,
    args: argparse.Namespace,
    service: Callable[[Settings, bool], Coroutine[Any, Any, int]],
) -> int:
    from aiokafka.errors import KafkaError

    from brokers.tansu import BrokerStartError
    from offhours.service import ServiceError

    _logging(args.verbose)
    settings = Settings().with_overrides(
        coverage_file=args.coverage, broker_url=args.broker, web_host=args.host, web_port=args.port
    )
    if args.idempotent_producer and settings.embedded and not settings.durable:
        print(
            f"offhours {command}: --idempotent-producer needs Apache Kafka: --broker, or OFFHOURS_EMBEDDED_BROKER=kafka",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import uvloop

    try:
        # uvloop, as in streams.worker.main: the same loop the benchmarks measure.
        return uvloop.run(service(settings, args.idempotent_producer))
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


# -- offhours sla report ----------------------------------------------------------

PROGRESS_EVERY = 100_000
SKIPS_SHOWN = 20
SLA_POLL_MS = 500


def _register_sla(subparsers: argparse._SubParsersAction) -> None:
    """Add ``offhours sla`` and its ``report`` subcommand."""
    sla = subparsers.add_parser(
        "sla",
        help="first-response times per team and mode, against the targets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "First-response SLA: how long customers waited for the first staff reply, per team\n"
            "and mode, and how many replies were slower than the mode's target\n"
            "(escalation: targets: in the coverage file). See docs/promises.md."
        ),
        epilog="example:\n  offhours sla report examples/coverage.yaml --events examples/events.jsonl",
    )
    sla_sub = sla.add_subparsers(dest="sla_command", metavar="SUBCOMMAND", required=True)
    report = sla_sub.add_parser(
        "report",
        help="a table of first-response count, median, p90 and breaches per team and mode",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Reads social events (README: Events) and prints, per team and mode, how many first\n"
            "responses there were, their median and p90, the mode's target and the breaches\n"
            "(responses slower than the target; none without a target).\n"
            "\n"
            "A first response is the first agent_reply after customer messages (dm, mention,\n"
            "comment) that came after the previous staff reply; it counts from the FIRST of\n"
            "those messages, in the team's mode at that message (an evening message answered\n"
            "next morning counts as reduced, say). A response is in --from/--to by the time\n"
            "of that customer message. Repeated event ids count once; invalid lines and\n"
            "accounts no team answers are skipped and listed on stderr.\n"
            "\n"
            "Events come from --events (JSON Lines; - for stdin), else from the events topic\n"
            "(OFFHOURS_EVENTS_TOPIC) of the broker in OFFHOURS_BROKER_URL, read from the\n"
            "beginning until it is exhausted.\n"
            "\n"
            "The coverage (teams, modes, targets) is the one in force: with OFFHOURS_BROKER_URL\n"
            "set, the config topic's (OFFHOURS_CONFIG_TOPIC), as the workers and /metrics use it,\n"
            "with every change and override made through the operations API; FILE only when the\n"
            "topic holds none. The first line of the table says which coverage and version (with\n"
            "--json: on stderr, and coverage_version in every object, null for a file).\n"
            "\n"
            "Durations read 45s, 42m, 1h05m, 2d03h; with --json, one object per row and line\n"
            "with durations in whole seconds (null when none).\n"
            "Exit 0 with the report; 2 for an invalid coverage file, a bad TIME, an unreadable\n"
            "events file, no event source or no coverage; 1 when the broker cannot be read."
        ),
        epilog=(
            "examples:\n"
            "  offhours sla report examples/coverage.yaml --events examples/events.jsonl\n"
            "  offhours sla report examples/coverage.yaml --events events.jsonl \\\n"
            "      --from 2026-11-01T00:00+01:00 --to 2026-12-01T00:00+01:00 --json\n"
            "  OFFHOURS_BROKER_URL=kafka://127.0.0.1:9092 offhours sla report coverage.yaml --from 2026-11-23\n"
            "\n"
            "output:\n"
            "  coverage: version 3 of the config topic offhours.config, in force (updated ... by ops:anna)\n"
            "  team     mode     count  median     p90  target  breaches\n"
            "  care-it  open        42     18m     55m       -         0\n"
            "  care-it  reduced      9     34m   1h20m   1h00m         2"
        ),
    )
    report.add_argument(
        "coverage", metavar="FILE", nargs="?",
        help="the coverage file (YAML), validated like 'coverage check'; with OFFHOURS_BROKER_URL only used "
        "when the config topic holds no coverage",
    )
    report.add_argument(
        "--events",
        metavar="EVENTS.jsonl",
        help="one event per line (README: Events); '-' reads stdin (default: the events topic of OFFHOURS_BROKER_URL)",
    )
    report.add_argument(
        "--from",
        dest="start",
        metavar="TIME",
        help="only responses to customer messages at or after TIME: ISO 8601 with an offset or Z; "
        "without one TIME is UTC (e.g. 2026-11-23T09:00+01:00)",
    )
    report.add_argument(
        "--to", dest="end", metavar="TIME", help="only responses to customer messages before TIME (as --from)"
    )
    report.add_argument("--json", action="store_true", help="JSON Lines, durations in seconds, instead of the table")
    report.set_defaults(handler=_sla_report)


def _sla_report(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from promises.sla import ResponseTracker, render_json_lines, render_table, sla_rows
    from schedules import CoverageInvalid, load_coverage

    prog = "offhours sla report"
    window = []
    for flag, text in (("--from", args.start), ("--to", args.end)):
        instant = None if text is None else _utc_instant(text)
        if text is not None and instant is None:
            print(f"{prog}: {flag} '{text}' is not a time; write ISO 8601, e.g. 2026-11-23T09:00+01:00 (no offset: UTC)", file=sys.stderr)
            return EXIT_USAGE
        window.append(instant)
    start, end = window
    if start is not None and end is not None and end <= start:
        print(f"{prog}: --to must be after --from", file=sys.stderr)
        return EXIT_USAGE
    settings = Settings()
    if args.events is None and settings.embedded:
        print(f"{prog}: no events: pass --events EVENTS.jsonl (- for stdin) or set OFFHOURS_BROKER_URL", file=sys.stderr)
        return EXIT_USAGE
    # aiokafka logs each failed connection; the one-line error below says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    in_force = None
    if not settings.embedded:
        try:
            in_force = asyncio.run(_coverage_in_force(settings, args.coverage))
        except KafkaError as exc:
            print(f"{prog}: broker {settings.broker_url}: {exc}", file=sys.stderr)
            return EXIT_BROKER
    if in_force is not None:
        coverage, version = in_force.coverage, in_force.document.version
        used = _in_force_line(in_force, settings.config_topic)
    elif args.coverage is None:
        print(f"{prog}: no coverage: the config topic {settings.config_topic!r} on {settings.broker_url} holds "
              "none; pass the coverage FILE", file=sys.stderr)
        return EXIT_USAGE
    else:
        try:
            coverage = load_coverage(args.coverage)
        except CoverageInvalid as invalid:
            count = len(invalid.problems)
            print(f"{args.coverage}: invalid coverage file, {count} problem{'s' if count != 1 else ''}:", file=sys.stderr)
            for problem in invalid.problems:
                print(f"  {problem}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as error:
            print(f"{prog}: cannot read {args.coverage}: {error.strerror or error}", file=sys.stderr)
            return EXIT_USAGE
        version = None
        why = (f"the config topic {settings.config_topic} on {settings.broker_url} holds none" if not settings.embedded
               else "OFFHOURS_BROKER_URL is not set; the service's coverage may differ")
        used = f"coverage: file {args.coverage} ({why})"

    tracker = ResponseTracker(coverage)
    progress = _Progress(sys.stderr)
    if args.events is not None:
        try:
            _read_event_lines(args.events, tracker, progress)
        except OSError as error:
            print(f"{prog}: cannot read {args.events}: {error.strerror or error}", file=sys.stderr)
            return EXIT_USAGE
    else:
        try:
            found = asyncio.run(_read_events_topic(client_options(settings), settings.events_topic, tracker, progress))
        except KafkaError as exc:
            print(f"{prog}: broker {settings.broker_url}: {exc}", file=sys.stderr)
            return EXIT_BROKER
        if not found:
            print(f"{prog}: no topic {settings.events_topic!r} on {settings.broker_url} (see OFFHOURS_EVENTS_TOPIC)", file=sys.stderr)
            return EXIT_BROKER
    progress.done()

    for skip in tracker.skipped[:SKIPS_SHOWN]:
        print(f"skipped {skip}", file=sys.stderr)
    if len(tracker.skipped) > SKIPS_SHOWN:
        print(f"skipped {len(tracker.skipped) - SKIPS_SHOWN} more", file=sys.stderr)
    if tracker.skipped:
        print(f"{len(tracker.skipped)} of {progress.count} inputs skipped", file=sys.stderr)

    rows = sla_rows(tracker.responses(), coverage, start, end)
    if not rows:
        print("no first responses in the events (and window) given", file=sys.stderr)
    if args.json:
        print(used, file=sys.stderr)
        sys.stdout.write(render_json_lines(rows, coverage_version=version))
    else:
        sys.stdout.write(used + "\n" + render_table(rows))
    return 0


async def _coverage_in_force(settings: Settings, file: str | None) -> CoverageInForce | None:
    """The coverage the workers on ``settings``' broker decide with: the config topic's
    (:func:`edge.config_store.read_coverage_in_force`), with its holiday calendars read
    as the service reads them; None when the topic holds none."""
    from edge.config_store import read_coverage_in_force
    from edge.ops_config import api_calendars

    folder = settings.ops.holiday_calendars_dir or (Path(file).parent if file is not None else settings.coverage_file.parent)
    return await read_coverage_in_force(
        client_options(settings), settings.config_topic,
        filename=Path(file).name if file is not None else settings.coverage_file.name,
        calendars=api_calendars(folder), limits=settings.ops.coverage_limits(),
    )


def _in_force_line(in_force: CoverageInForce, topic: str) -> str:
    """``coverage: version 3 of the config topic offhours.config, in force (updated WHEN by WHO)``."""
    document = in_force.document
    by = f" by {document.updated_by}" if document.updated_by else ""
    when = f" {document.updated_at}" if document.updated_at else ""
    line = f"coverage: version {document.version} of the config topic {topic}, in force (updated{when}{by})"
    if in_force.skipped:
        versions = ", ".join(str(v) for v in in_force.skipped)
        line += f"; newer version(s) {versions} invalid and skipped, as the workers skip them"
    return line


def _utc_instant(text: str) -> datetime | None:
    """An ISO 8601 instant (offset or Z); without an offset it is UTC. None when unreadable."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class _Progress:
    """Counts the inputs read; on a terminal, says so every :data:`PROGRESS_EVERY`."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.shown = err.isatty()
        self.count = 0

    def step(self) -> None:
        self.count += 1
        if self.shown and self.count % PROGRESS_EVERY == 0:
            print(f"\r{self.count:,} events read", end="", file=self.err, flush=True)

    def done(self) -> None:
        if self.shown and self.count >= PROGRESS_EVERY:
            print(file=self.err)


def _read_event_lines(source: str, tracker: ResponseTracker, progress: _Progress) -> None:
    """Feed every non-blank line of ``source`` (a path, or - for stdin) to ``tracker``."""
    stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115 - closed below, not stdin
    try:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            progress.step()
            tracker.add_raw(line, f"line {number}")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


async def _read_events_topic(connection: ClientOptions, topic: str, tracker: ResponseTracker, progress: _Progress) -> bool:
    """Feed every record of ``topic``, from the beginning, to ``tracker``; False when there is no such topic.

    Reading stops at the first poll that returns nothing once every partition has reached
    the end offset seen at the start: the embedded broker (Tansu) can report an end
    offset short of its last batch, so the end offset alone is not trusted.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**connection, client_id="offhours-sla")
    try:
        await admin.start()
        # Metadata of every topic: a request naming this one could make the broker create it.
        described = await admin.describe_topics()
    finally:
        await admin.close()
    partitions = sorted(
        TopicPartition(topic, part["partition"])
        for entry in described
        if entry["topic"] == topic and entry["error_code"] == 0
        for part in entry["partitions"]
    )
    if not partitions:
        return False
    consumer = AIOKafkaConsumer(
        **connection, group_id=None, enable_auto_commit=False, client_id="offhours-sla"
    )
    try:
        await consumer.start()
        consumer.assign(partitions)
        await seek_to_beginning(consumer, *partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=SLA_POLL_MS)
            records = [record for batch in batches.values() for record in batch]
            for record in records:
                progress.step()
                tracker.add_raw(record.value or b"", f"{record.topic}:{record.partition}:{record.offset}")
            if not records and all([await consumer.position(p) >= end for p, end in ends.items()]):
                return True
    finally:
        await consumer.stop()
