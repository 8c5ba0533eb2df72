"""``offhours sla report`` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from edge.config_store import ConfigDocument, ensure_topic
from tests.streams.test_sla import COVERAGE

ROOT = Path(__file__).resolve().parents[2]



def _event(id: str, kind: str, at: str, conversation: str, account: str = "acme.it.facebook") -> str:
    return orjson.dumps(
        {
            "id": id, "account": account, "channel": "facebook", "kind": kind, "conversation": conversation,
            "author": {"id": "someone", "name": None, "followers": 10}, "text": "…", "lang": None,
            "at": at, "in_reply_to": None,
        }
    ).decode()


# Monday 2026-11-23. Rome is +01:00, New York -05:00.
EVENTS = [
    _event("a1", "dm", "2026-11-23T10:00:00+01:00", "fb:P:a"),
    _event("a2", "dm", "2026-11-23T10:10:00+01:00", "fb:P:a"),
    _event("a1", "dm", "2026-11-23T10:00:00+01:00", "fb:P:a"),
    _event("ar1", "agent_reply", "2026-11-23T10:40:00+01:00", "fb:P:a"),
    _event("a3", "dm", "2026-11-23T21:00:00+01:00", "fb:P:a"),
    _event("ar2", "agent_reply", "2026-11-23T22:30:00+01:00", "fb:P:a"),
    _event("b1", "comment", "2026-11-23T20:00:00+01:00", "fb:P:b", "acme_it_x"),
    "{this is not json",
    _event("br1", "agent_reply", "2026-11-23T20:20:00+01:00", "fb:P:b", "acme_it_x"),
    _event("x1", "dm", "2026-11-23T20:00:00+01:00", "tg:1", "acme.fr.telegram"),
    _event("c1", "dm", "2026-11-23T09:00:00-05:00", "fb:P:c", "acme.us.facebook"),
    _event("cr1", "agent_reply", "2026-11-23T09:05:00-05:00", "fb:P:c", "acme.us.facebook"),
]

TABLE = (
    "team     mode     count  median    p90  target  breaches\n"
    "care-it  open         1     40m    40m   2h00m         0\n"
    "care-it  reduced      2     20m  1h30m   1h00m         1\n"
    "care-us  open         1      5m     5m       -         0\n"
)


def file_line(coverage: str) -> str:
    """The report's first line when it used the coverage FILE without a broker."""
    return f"coverage: file {coverage} (OFFHOURS_BROKER_URL is not set; the service's coverage may differ)\n"


def offhours(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m offhours ARGS`` with no OFFHOURS_* settings but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    return subprocess.run(
        [sys.executable, "-m", "offhours", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, input=stdin, env={**clean, **(env or {})},
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A coverage file with targets and an events file with duplicates, an invalid line and an unknown account."""
    folder = tmp_path_factory.mktemp("sla")
    coverage = folder / "coverage.yaml"
    coverage.write_text(textwrap.dedent(COVERAGE), encoding="utf-8")
    events = folder / "events.jsonl"
    events.write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return str(coverage), str(events)


@pytest.fixture(scope="module")
def table_run(files: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    """One run of the report as a table on the events file."""
    coverage, events = files
    return offhours("sla", "report", coverage, "--events", events)


class TestSlaReport:
    """The report on a small events file."""

    def test_table(self, table_run, files):
        """Exit 0, the coverage used, and an aligned table per team and mode: count, median, p90, target, breaches."""
        coverage, _ = files
        assert (0, file_line(coverage) + TABLE) == (table_run.returncode, table_run.stdout)

    def test_skipped_inputs_on_stderr_with_line_numbers(self, table_run):
        """The invalid line and the unknown account are named on stderr, with how many were skipped."""
        lines = table_run.stderr.splitlines()
        skipped = [line.split(": ")[:2] for line in lines if line.startswith("skipped ")]
        expected = (
            [["skipped line 8", "not JSON"], ["skipped line 10", "account 'acme.fr.telegram' is not under any team's accounts"]],
            "2 of 12 inputs skipped",
        )
        assert expected == (skipped, lines[-1])

    def test_json_lines(self, files):
        """--json prints one object per team and mode, durations in seconds."""
        coverage, events = files
        result = offhours("sla", "report", coverage, "--events", events, "--json")
        expected = [
            {"team": "care-it", "mode": "open", "count": 1, "median": 2400, "p90": 2400, "target": 7200, "breaches": 0},
            {"team": "care-it", "mode": "reduced", "count": 2, "median": 1200, "p90": 5400, "target": 3600, "breaches": 1},
            {"team": "care-us", "mode": "open", "count": 1, "median": 300, "p90": 300, "target": None, "breaches": 0},
        ]
        expected = [{**row, "coverage_version": None} for row in expected]
        assert (0, expected, True) == (
            result.returncode, [orjson.loads(line) for line in result.stdout.splitlines()],
            file_line(coverage) in result.stderr,
        )

    @pytest.mark.parametrize(
        ("window", "expected"),
        [
            pytest.param(["--from", "2026-11-23T19:30"], [("care-it", "reduced", 1)], id="no_offset_is_utc"),
            pytest.param(["--from", "2026-11-23T19:30+01:00"], [("care-it", "reduced", 2)], id="with_offset"),
            pytest.param(["--to", "2026-11-23T10:05+01:00"], [("care-it", "open", 1)], id="to_excludes_later_customers"),
            pytest.param(["--from", "2026-11-24T00:00Z", "--to", "2026-11-25T00:00Z"], [], id="empty_window"),
        ],
    )
    def test_from_to_window(self, files, window, expected):
        """--from/--to keep the responses whose customer message is in [from, to); TIME without offset is UTC."""
        coverage, events = files
        result = offhours("sla", "report", coverage, "--events", events, "--json", *window)
        rows = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert (0, expected) == (result.returncode, [(r["team"], r["mode"], r["count"]) for r in rows])

    def test_events_from_stdin(self, files):
        """--events - reads the events from standard input."""
        coverage, _ = files
        result = offhours("sla", "report", coverage, "--events", "-", stdin="\n".join(EVENTS) + "\n")
        assert (0, file_line(coverage) + TABLE) == (result.returncode, result.stdout)

    def test_help_teaches_with_an_example(self):
        """--help shows an example command and says that TIME without an offset is UTC."""
        result = offhours("sla", "report", "--help")
        expected = (0, True, True)
        assert expected == (result.returncode, "offhours sla report examples/coverage.yaml --events" in result.stdout, "UTC" in result.stdout)


class TestSlaReportErrors:
    """Usage errors exit 2 with the reason and no traceback."""

    def test_invalid_coverage_exits_2_with_problems(self, tmp_path, files):
        """An invalid coverage file is rejected as 'coverage check' rejects it, listing the problem."""
        _, events = files
        bad = tmp_path / "bad.yaml"
        bad.write_text("teams:\n  care-it:\n    timezone: Europe/Rom\n    hours: {daily: ['09:00-17:00 open']}\n", encoding="utf-8")
        result = offhours("sla", "report", str(bad), "--events", events)
        expected = (2, "", True, True, False)
        actual = (
            result.returncode,
            result.stdout,
            "invalid coverage file" in result.stderr,
            f"{bad}:3: team 'care-it': unknown time zone 'Europe/Rom'" in result.stderr,
            "Traceback" in result.stderr,
        )
        assert expected == actual

    def test_no_broker_and_no_events_exits_2_with_the_hint(self, files):
        """Without --events and without OFFHOURS_BROKER_URL it says to pass one or set the other."""
        coverage, _ = files
        result = offhours("sla", "report", coverage)
        expected = (2, "", True)
        actual = (result.returncode, result.stdout, "--events" in result.stderr and "OFFHOURS_BROKER_URL" in result.stderr)
        assert expected == actual

    @pytest.mark.parametrize(
        "arguments",
        [
            pytest.param(["--from", "yesterday"], id="unreadable_time"),
            pytest.param(["--from", "2026-11-24T00:00Z", "--to", "2026-11-23T00:00Z"], id="to_before_from"),
            pytest.param(["--events", "no/such/events.jsonl"], id="missing_events_file"),
        ],
    )
    def test_bad_arguments_exit_2(self, files, arguments):
        """A bad TIME, an empty window or an unreadable events file exits 2 without a traceback."""
        coverage, events = files
        if "--events" not in arguments:
            arguments = [*arguments, "--events", events]
        result = offhours("sla", "report", coverage, *arguments)
        assert (2, "", False) == (result.returncode, result.stdout, "Traceback" in result.stderr)


async def _publish(broker: EmbeddedBroker, topic: str, lines: list[str]) -> None:
    """Produce each line to ``topic`` keyed by its conversation, as the ingest edge does."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for line in lines:
            key = orjson.loads(line)["conversation"].encode() if line.startswith("{\"") else b"bad"
            await producer.send_and_wait(topic, key=key, value=line.encode())
    finally:
        await producer.stop()


@pytest.mark.broker
class TestSlaReportFromBroker:
    """Without --events the report reads the events topic of the configured broker."""

    async def test_reads_the_events_topic_to_its_end(self, broker: EmbeddedBroker, unique_name: str, files):
        """Every event on the topic, across partitions, is read once and the command exits."""
        coverage, _ = files
        topic = f"{unique_name}.events"
        await ensure_topic(broker.bootstrap, topic, partitions=2)
        await _publish(broker, topic, EVENTS)
        env = {"OFFHOURS_BROKER_URL": broker.url, "OFFHOURS_EVENTS_TOPIC": topic,
               "OFFHOURS_CONFIG_TOPIC": f"{unique_name}.config"}
        result = await asyncio.to_thread(offhours, "sla", "report", coverage, env=env)
        used = (f"coverage: file {coverage} (the config topic {unique_name}.config on {broker.url} holds none)\n")
        assert (0, used + TABLE) == (result.returncode, result.stdout), result.stderr


STRIKE = {"id": "ovr-strike", "team": "care-it", "kind": "coverage", "from": "2026-11-23 09:00",
          "to": "2026-11-24 00:00", "mode": "closed", "note": "strike"}


async def _publish_coverage(broker: EmbeddedBroker, topic: str, documents: list[ConfigDocument]) -> None:
    """Publish ``documents`` on a config topic as the operations API does (compacted, key ``coverage``)."""
    await ensure_topic(broker.bootstrap, topic, configs={"cleanup.policy": "compact"})
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for document in documents:
            await producer.send_and_wait(topic, key=b"coverage", value=document.to_json())
    finally:
        await producer.stop()


@pytest.mark.broker
class TestSlaReportUsesTheCoverageInForce:
    """With a broker, the report decides modes with the config topic's coverage, as the workers and
    /metrics do, not with the file (on main it read the file and missed the API's override)."""

    @pytest.fixture
    async def env(self, broker: EmbeddedBroker, unique_name: str) -> dict[str, str]:
        """A config topic whose version 2 is the file plus an API override closing care-it all Monday."""
        text = textwrap.dedent(COVERAGE)
        await _publish_coverage(broker, f"{unique_name}.config", [
            ConfigDocument(yaml=text, version=1, updated_by="system:seed", updated_at="2026-11-22T08:00:00+00:00"),
            ConfigDocument(yaml=text, overrides=(STRIKE,), version=2, updated_by="ops:anna",
                           updated_at="2026-11-23T07:30:00+00:00"),
        ])
        return {"OFFHOURS_BROKER_URL": broker.url, "OFFHOURS_CONFIG_TOPIC": f"{unique_name}.config"}

    async def test_the_override_of_the_api_decides_the_mode(self, env: dict[str, str], files) -> None:
        """The table names version 2 and counts care-it's Monday responses as closed, against the closed target."""
        coverage, events = files
        result = await asyncio.to_thread(offhours, "sla", "report", coverage, "--events", events, env=env)
        expected = (
            f"coverage: version 2 of the config topic {env['OFFHOURS_CONFIG_TOPIC']}, in force "
            "(updated 2026-11-23T07:30:00+00:00 by ops:anna)\n"
            "team     mode    count  median    p90  target  breaches\n"
            "care-it  closed      3     40m  1h30m  12h00m         0\n"
            "care-us  open        1      5m     5m       -         0\n"
        )
        assert (0, expected) == (result.returncode, result.stdout), result.stderr

    async def test_json_names_the_version_and_no_file_is_needed(self, env: dict[str, str], files) -> None:
        """Without FILE the topic's coverage serves; every JSON object carries coverage_version."""
        _, events = files
        result = await asyncio.to_thread(offhours, "sla", "report", "--events", events, "--json", env=env)
        rows = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert (0, [("care-it", "closed", 3, 2), ("care-us", "open", 1, 2)]) == (
            result.returncode, [(r["team"], r["mode"], r["count"], r["coverage_version"]) for r in rows]
        ), result.stderr

    async def test_a_newer_invalid_version_is_skipped_as_the_workers_skip_it(
        self, broker: EmbeddedBroker, env: dict[str, str], files
    ) -> None:
        """Version 3 does not load: the workers keep version 2, and so does the report, saying so."""
        coverage, events = files
        await _publish_coverage(broker, env["OFFHOURS_CONFIG_TOPIC"], [
            ConfigDocument(yaml="teams:\n  care-it:\n    timezone: Europe/Roma\n", version=3, updated_by="ops:bob"),
        ])
        result = await asyncio.to_thread(offhours, "sla", "report", coverage, "--events", events, env=env)
        first = result.stdout.splitlines()[0] if result.stdout else ""
        assert (0, True, True) == (
            result.returncode, first.startswith("coverage: version 2 of the config topic"),
            first.endswith("; newer version(s) 3 invalid and skipped, as the workers skip them"),
        ), result.stderr

    async def test_no_file_and_an_empty_topic_exits_2(self, broker: EmbeddedBroker, unique_name: str, files) -> None:
        """Without FILE and with nothing on the config topic there is no coverage to report with."""
        _, events = files
        env = {"OFFHOURS_BROKER_URL": broker.url, "OFFHOURS_CONFIG_TOPIC": f"{unique_name}.none"}
        result = await asyncio.to_thread(offhours, "sla", "report", "--events", events, env=env)
        assert (2, "", True) == (
            result.returncode, result.stdout, f"the config topic '{unique_name}.none' on {broker.url} holds none; "
            "pass the coverage FILE" in result.stderr,
        )
