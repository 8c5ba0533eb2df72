"""``offhours sla report`` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import asyncio
import textwrap

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from brokers.tansu import EmbeddedBroker
from edge.config_store import ConfigDocument, ensure_topic
from tests.support.offhours_sla_cli import EVENTS, TABLE, offhours
from tests.support.sla import COVERAGE


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A coverage file with targets and an events file with duplicates, an invalid line and an unknown account."""
    folder = tmp_path_factory.mktemp("sla")
    coverage = folder / "coverage.yaml"
    coverage.write_text(textwrap.dedent(COVERAGE), encoding="utf-8")
    events = folder / "events.jsonl"
    events.write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return str(coverage), str(events)


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

