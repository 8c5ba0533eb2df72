"""``offhours run`` and ``offhours ingest`` as an operator runs them: subprocesses on the
session's embedded broker, reached over HTTP on free ports.

Two ``offhours run`` processes share one broker, app id and topics (two workers of one
deployment); each test waits for what it expects with a deadline, never a blind sleep.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest

from brokers.tansu import EmbeddedBroker
from streams.settings import Settings
from tests.conftest import EXAMPLE_COVERAGE, settings_for
from tests.support.service import TOKEN, ServiceProcess, event, signed, until
from tests.support.watch import WatchProcess
from tests.support.workers import ROOT, TopicReader


@dataclass(frozen=True)
class Deployment:
    """Two ``offhours run`` processes of one deployment and their settings."""

    settings: Settings
    first: str
    second: str
    first_process: ServiceProcess

    @property
    def urls(self) -> tuple[str, str]:
        return self.first, self.second


@pytest.fixture(scope="module")
def deployment(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two services on the session broker, sharing topics and app id; stopped at the end."""
    name = f"service-{uuid.uuid4().hex[:8]}"
    base = tmp_path_factory.mktemp(name)
    settings = settings_for(broker, name, base / "data", coverage_file=base / "coverage.yaml")
    settings.coverage_file.write_text(EXAMPLE_COVERAGE.read_text(encoding="utf-8"), encoding="utf-8")
    first = ServiceProcess.spawn("run", settings, base / "first.log")
    second: ServiceProcess | None = None
    try:
        first_url = asyncio.run(first.wait_ready())
        second = ServiceProcess.spawn("run", settings.with_overrides(data_dir=base / "data2"), base / "second.log")
        second_url = asyncio.run(second.wait_ready())
        yield Deployment(settings, first_url, second_url, first)
    finally:
        for process in (second, first):
            if process is not None:
                process.stop()


def events_in(metrics_text: str, channel: str) -> float:
    found = re.search(rf'^offhours_events_in_total\{{channel="{channel}"\}} (\S+)$', metrics_text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def decided_from_webhooks(metrics_text: str) -> float:
    found = re.search(r"^offhours_webhook_to_decision_seconds_count (\S+)$", metrics_text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class TestService:
    """``offhours run``: webhooks, operations API and /metrics joined to the stream worker."""

    async def test_webhook_to_decision_latency_is_observed(self, deployment: Deployment) -> None:
        """A decision made from a webhook event adds an observation to offhours_webhook_to_decision_seconds."""
        async with aiohttp.ClientSession() as http:

            async def observed() -> float:
                total = 0.0
                for url in deployment.urls:  # whichever worker holds the partition decides
                    async with http.get(f"{url}/metrics") as answer:
                        total += decided_from_webhooks(await answer.text())
                return total

            before = await observed()
            body, headers = signed(event(f"fb:m_{uuid.uuid4().hex[:10]}"))
            async with http.post(f"{deployment.first}/webhooks/generic", data=body, headers=headers) as answer:
                assert 200 == answer.status

            async def grown() -> float | None:
                now = await observed()
                return now if now > before else None

            after = await until(grown, "a webhook-to-decision observation")
        assert before + 1 <= after

    async def test_printed_watch_command_shows_the_decision(self, deployment: Deployment) -> None:
        """The command printed on the ``watch:`` line prints the decision of an event posted afterwards."""
        printed = next(line for line in deployment.first_process.lines if line.startswith("watch:"))
        command = shlex.split(printed.removeprefix("watch:"))
        event_id = f"fb:m_{uuid.uuid4().hex[:10]}"
        assert ["offhours", "decisions"] == command[:2]
        watch = WatchProcess.spawn([*command[1:], "--conversation", f"fb:PAGE_111:{event_id}"])
        try:
            await watch.wait_watching()
            body, headers = signed(event(event_id))
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{deployment.first}/webhooks/generic", data=body, headers=headers) as answer:
                    assert 200 == answer.status
            decided = await watch.wait_lines(1)
        finally:
            code = watch.interrupt()
        assert (0, [event_id]) == (code, [d["event_id"] for d in decided])

    async def test_webhook_event_is_decided(self, deployment: Deployment) -> None:
        """A signed generic event posted to the service gets its decision on the decisions topic."""
        event_id = f"fb:m_{uuid.uuid4().hex[:10]}"
        body, headers = signed(event(event_id))
        async with TopicReader(deployment.settings, deployment.settings.decisions_topic) as reader:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{deployment.first}/webhooks/generic", data=body, headers=headers) as answer:
                    assert (200, 1) == (answer.status, (await answer.json())["produced"])

            async def decision() -> dict[str, object] | None:
                for record in await reader.poll():
                    decided = orjson.loads(record.value)
                    if decided["event_id"] == event_id:
                        return decided
                return None

            decided = await until(decision, f"the decision of {event_id}")
        assert ("care-it", "closed", True) == (decided["team"], decided["mode"], decided["ack"] is not None)

    async def test_metrics_count_events_in_by_channel(self, deployment: Deployment) -> None:
        """/metrics counts an accepted webhook event under offhours_events_in_total by channel."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{deployment.first}/metrics") as answer:
                before = events_in(await answer.text(), "facebook")
            body, headers = signed(event(f"fb:m_{uuid.uuid4().hex[:10]}"))
            async with http.post(f"{deployment.first}/webhooks/generic", data=body, headers=headers) as answer:
                assert 200 == answer.status
            async with http.get(f"{deployment.first}/metrics") as answer:
                text = await answer.text()
        assert before + 1 == events_in(text, "facebook")

    async def test_metrics_show_consumer_lag_of_held_partitions(self, deployment: Deployment) -> None:
        """/metrics has an offhours_consumer_lag series for each events partition the worker holds."""
        topic = re.escape(deployment.settings.events_topic)
        series = re.compile(rf'^offhours_consumer_lag\{{partition="(\d+)",topic="{topic}"\}} (\S+)$', re.MULTILINE)
        async with aiohttp.ClientSession() as http:

            async def lag_partitions() -> set[str] | None:
                async with http.get(f"{deployment.first}/metrics") as answer:
                    held = {partition for partition, _ in series.findall(await answer.text())}
                return held or None

            held = await until(lag_partitions, "a consumer lag series")
        assert held <= {str(p) for p in range(deployment.settings.partitions)}

    async def test_api_without_token_is_unauthorized(self, deployment: Deployment) -> None:
        """The operations API answers 401 with a Bearer challenge when no token is given."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{deployment.first}/api/v1/teams") as answer:
                assert (401, True) == (answer.status, answer.headers["WWW-Authenticate"].startswith("Bearer"))

    async def test_readyz_reports_broker_coverage_and_worker(self, deployment: Deployment) -> None:
        """/readyz is 200 with each of its checks true once the service is ready (it is 503 during a rebalance)."""
        async with aiohttp.ClientSession() as http:

            async def ready() -> tuple[int, dict] | None:
                async with http.get(f"{deployment.first}/readyz") as answer:
                    found = (answer.status, await answer.json())
                return found if found[0] == 200 else None

            found = await until(ready, "/readyz to answer 200")
        assert (200, {"ready": True, "accepting": True, "worker": True, "broker": True, "coverage": True, "coverage_applied": True}) == found

    async def test_coverage_change_reaches_the_second_worker(self, deployment: Deployment) -> None:
        """A coverage PUT through the first service's API is answered by the second within seconds."""
        auth = {"Authorization": f"Bearer {TOKEN}"}
        at = "2027-03-10T12:00"  # a Wednesday noon in New York: open in the example file
        query = f"/api/v1/teams/care-us/coverage?at={at}"
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.get(f"{deployment.second}{query}") as answer:
                assert "open" == (await answer.json())["mode"]
            async with http.get(f"{deployment.first}/api/v1/coverage") as answer:
                etag, text = answer.headers["ETag"], await answer.text()
            changed = text.replace('"08:00-20:00 open"', '"08:00-20:00 reduced"')
            headers = {"If-Match": etag, "Content-Type": "application/yaml"}
            async with http.put(f"{deployment.first}/api/v1/coverage", data=changed, headers=headers) as answer:
                assert 200 == answer.status, await answer.text()

            async def mode_on_second() -> str | None:
                async with http.get(f"{deployment.second}{query}") as answer:
                    mode = (await answer.json())["mode"]
                return mode if mode != "open" else None

            assert "reduced" == await until(mode_on_second, "the second worker to see the change")


class TestIngest:
    """``offhours ingest``: the edge without a stream worker."""

    def test_help_exits_zero(self) -> None:
        """``offhours ingest --help`` explains the command and exits 0."""
        done = subprocess.run(
            [sys.executable, "-m", "offhours", "ingest", "--help"],
            cwd=ROOT, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60,
        )
        assert (0, True) == (done.returncode, b"no stream worker" in done.stdout)

    async def test_ingest_produces_to_the_events_topic(
        self, broker: EmbeddedBroker, unique_name: str, tmp_path: Path
    ) -> None:
        """A signed event posted to ``offhours ingest`` lands on the events topic, keyed by conversation."""
        settings = settings_for(broker, unique_name, tmp_path / "data")
        ingest = ServiceProcess.spawn("ingest", settings, tmp_path / "ingest.log")
        try:
            base = await ingest.wait_ready()
            event_id = f"fb:m_{uuid.uuid4().hex[:10]}"
            body, headers = signed([event(event_id)])
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/webhooks/generic", data=body, headers=headers) as answer:
                    assert 200 == answer.status, await answer.text()
                async with http.get(f"{base}/readyz") as answer:
                    assert {"ready": True, "accepting": True, "broker": True, "coverage": True} == await answer.json()
            async with TopicReader(settings, settings.events_topic) as reader:

                async def produced() -> bytes | None:
                    for record in await reader.poll():
                        if orjson.loads(record.value)["id"] == event_id:
                            return record.key
                    return None

                key = await until(produced, f"{event_id} on the events topic")
            assert f"fb:PAGE_111:{event_id}".encode() == key
        finally:
            assert 0 == ingest.stop(), ingest.output()

