"""``offhours replay FILE EVENTS.jsonl``: events through the real pipeline, decisions out.

Each line of the events file is produced to the events topic (keyed by its
``conversation``, with header ``offhours-seq`` = the line's index), the triage agent
decides it on a real broker (the embedded one unless ``OFFHOURS_BROKER_URL`` is set),
and the decisions are read back from the decisions topic and printed one JSON object
per input line, in input order. The clock is each event's own ``at``, so a replay
gives the same decisions whenever it runs.

- Lines that are not a valid event still get their decision (``reject`` with the
  reason; ``event_id`` null when the line has no readable id). Blank lines are skipped.
- Every run uses its own app id and topic names, so runs never see each other's data.
- Progress goes to stderr (only on a terminal or for long files); stdout carries
  decisions only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from brokers.client import client_options
from brokers.tansu import EmbeddedBroker
from records.headers import HEADER_SEQ, header_value
from records.wire import raw_field
from schedules import Coverage
from streams.settings import Settings
from streams.worker import running_worker

log = logging.getLogger(__name__)

LONG_FILE_LINES = 1000
REPLAY_SESSION_TIMEOUT = 2.0


class ReplayError(Exception):
    """A replay that cannot run (unreadable file, invalid coverage); the message says why."""


@dataclass(frozen=True, slots=True)
class InputLine:
    """One non-blank line of the events file, as produced to the events topic."""

    seq: int
    key: bytes | None
    value: bytes


def read_lines(path: Path) -> list[InputLine]:
    """The non-blank lines of ``path`` with their conversation keys (None when unreadable)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ReplayError(f"cannot read events file {path}: {exc.strerror or exc}") from None
    lines: list[InputLine] = []
    for raw in content.splitlines():
        if not raw.strip():
            continue
        lines.append(InputLine(seq=len(lines), key=_conversation_key(raw), value=raw))
    return lines


def _conversation_key(raw: bytes) -> bytes | None:
    conversation = raw_field(raw, "conversation")
    return None if conversation is None else conversation.encode()


def replay_settings(base: Settings, coverage_file: Path, run_id: str | None = None) -> Settings:
    """``base`` with this run's own app id and topics, a short session timeout, no delivery.

    A replay decides, it never answers: the responders are off, so nothing reaches a
    platform or a member of staff (the outbox topics still carry what would be sent).

    One replay is one worker, so the session timeout only sets how long the group join
    waits (about half of it on Tansu); a short one makes a small replay take seconds.
    """
    run = run_id or uuid.uuid4().hex[:10]
    return base.with_overrides(
        coverage_file=coverage_file,
        app_id=f"offhours-replay-{run}",
        events_topic=f"replay-{run}.events",
        decisions_topic=f"replay-{run}.decisions",
        acks_topic=f"replay-{run}.acks",
        routes_topic=f"replay-{run}.routes",
        dead_letter_topic=f"replay-{run}.deadletter",
        config_topic=f"replay-{run}.config",
        ops=base.ops.model_copy(update={"actions_topic": f"replay-{run}.actions"}),
        responders=base.responders.model_copy(update={"deliver": False}),
        session_timeout=min(base.session_timeout, REPLAY_SESSION_TIMEOUT),
        store="memory://",
    )


async def produce_lines(settings: Settings, lines: list[InputLine]) -> None:
    """Produce every line to the events topic with its ``offhours-seq`` header."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        pending = [
            await producer.send(
                settings.events_topic,
                key=line.key,
                value=line.value,
                headers=[(HEADER_SEQ, str(line.seq).encode())],
            )
            for line in lines
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def collect_decisions(
    settings: Settings,
    expected: int,
    *,
    deadline: float,
    progress: Callable[[int], None] = lambda done: None,
) -> dict[int, bytes]:
    """Read the decisions topic until every ``offhours-seq`` in ``range(expected)`` has one.

    A redelivered event may be decided twice; the first decision read is kept (they are
    the same). Raises :class:`ReplayError` when ``deadline`` (monotonic) passes first.
    """
    consumer = AIOKafkaConsumer(
        settings.decisions_topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    decisions: dict[int, bytes] = {}
    try:
        while len(decisions) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplayError(
                    f"only {len(decisions)} of {expected} decisions arrived in time; "
                    "is the broker healthy?"
                )
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    seq = header_value(record.headers, HEADER_SEQ)
                    if seq is not None and seq.isdigit():
                        decisions.setdefault(int(seq), record.value)
            progress(len(decisions))
    finally:
        await consumer.stop()
    return decisions


async def replay(
    settings: Settings,
    coverage: Coverage,
    lines: list[InputLine],
    *,
    out: TextIO,
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Run ``lines`` through the pipeline on ``settings``' broker and write the decisions."""
    async with running_worker(settings, coverage, reconcile=False, promises=False):
        await produce_lines(settings, lines)
        deadline = time.monotonic() + 30.0 + 0.05 * len(lines)
        decisions = await collect_decisions(settings, len(lines), deadline=deadline, progress=progress)
    for line in lines:
        out.write(decisions[line.seq].decode())
        out.write("\n")
    out.flush()


async def replay_file(
    base: Settings, coverage_file: Path, events_file: Path, *, out: TextIO, err: TextIO
) -> None:
    """Load everything, start the embedded broker when none is configured, and replay."""
    from schedules import CoverageInvalid, load_coverage

    try:
        coverage = load_coverage(coverage_file)
    except CoverageInvalid as exc:
        raise ReplayError(f"invalid coverage file {coverage_file}:\n{exc}") from None
    except OSError as exc:
        raise ReplayError(f"cannot read coverage file {coverage_file}: {exc.strerror or exc}") from None
    lines = read_lines(events_file)
    settings = replay_settings(base, coverage_file)
    with _progress(len(lines), err) as progress:
        if settings.embedded:
            async with EmbeddedBroker() as broker:
                await replay(settings.with_overrides(broker_url=broker.url, broker_flavour="tansu", one_record_batches=True), coverage, lines, out=out, progress=progress)
        else:
            await replay(settings, coverage, lines, out=out, progress=progress)


class _progress:
    """A rich progress bar on ``err`` when it is a terminal or the file is long; else nothing."""

    def __init__(self, total: int, err: TextIO) -> None:
        self.total = total
        self.err = err
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if not (self.err.isatty() or self.total >= LONG_FILE_LINES):
            return lambda done: None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(file=self.err), transient=True)
        self._bar.start()
        task = self._bar.add_task("replaying", total=self.total)
        return lambda done: self._bar.update(task, completed=done)  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
