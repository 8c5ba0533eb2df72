"""The durable single machine: ``offhours run`` with ``OFFHOURS_EMBEDDED_BROKER=kafka``.

One ``offhours run`` process starts its own Apache Kafka node with its data under
``OFFHOURS_DATA_DIR/kafka``. Stopped and started again, and SIGKILLed and started again,
it keeps the override made through the API, the conversation state (a platform's
redelivery gets the same decision and no second acknowledgment), the events it
accepted, and a pending escalation, whose chain walks on from where it was.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
import yaml

from records.wire import AckRequest
from streams.settings import Settings
from tests.conftest import EXAMPLE_COVERAGE
from tests.support.service import (
    TOKEN,
    ServiceProcess,
    event,
    service_env,
    signed,
    until,
)
from tests.support.workers import TopicReader

pytestmark = pytest.mark.broker

AUTH = {"Authorization": f"Bearer {TOKEN}"}
STRIKE = {"from": "2027-02-01 00:00", "to": "2027-02-02 00:00", "mode": "closed", "note": "sciopero"}


def assert_one_acknowledgment(requests: list[AckRequest]) -> None:
    """A redelivery puts the same acknowledgment request on the outbox again (same id, same
    text): the delivery ledger, kept in the durable broker too, sends that id once."""
    assert (True, 1) == (len(requests) >= 1, len(set(requests))), requests


class DurableService:
    """``offhours run`` on its own embedded Apache Kafka, started again as often as needed."""

    def __init__(self, base: Path, coverage: Path = EXAMPLE_COVERAGE, sweep_interval: float = 30.0) -> None:
        self.base = base
        name = f"durable-{uuid.uuid4().hex[:8]}"
        self.settings = Settings(
            coverage_file=coverage, app_id=name, data_dir=base / "data", partitions=2,
            session_timeout=3.0, reconcile_interval=2.0, sweep_interval=sweep_interval,
        )
        self.env = service_env(self.settings)
        self.env.pop("OFFHOURS_BROKER_URL", None)
        self.env["OFFHOURS_EMBEDDED_BROKER"] = "kafka"
        self.starts = 0
        self.process: ServiceProcess | None = None
        self.url = ""
        self.live: Settings | None = None

    async def start(self) -> None:
        self.starts += 1
        self.process = ServiceProcess.spawn("run", self.settings, self.base / f"run-{self.starts}.log", env=self.env)
        self.url = await self.process.wait_ready()
        broker = next(line for line in self.process.lines if line.startswith("broker:"))
        found = re.match(r"broker:\s+(kafka://\S+) \(embedded Apache Kafka", broker)
        assert found is not None, broker
        self.live = self.settings.with_overrides(broker_url=found.group(1))

    def stop(self) -> None:
        assert self.process is not None
        assert 0 == self.process.stop(timeout=60), self.process.output()

    def kill(self) -> None:
        assert self.process is not None
        self.process.process.kill()
        self.process.process.wait()

    async def post(self, payload: dict[str, object]) -> None:
        body, headers = signed(payload)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/webhooks/generic", data=body, headers=headers) as answer:
                assert 200 == answer.status, await answer.text()

    async def decisions_of(self, event_id: str, count: int) -> list[dict[str, object]]:
        """The first ``count`` decisions of ``event_id`` on the decisions topic (waits for them)."""
        assert self.live is not None
        async with TopicReader(self.live, self.live.decisions_topic) as reader:

            async def enough() -> list[dict[str, object]] | None:
                await reader.poll()
                found = [d for r in reader.records if (d := orjson.loads(r.value))["event_id"] == event_id]
                return found if len(found) >= count else None

            return await until(enough, f"{count} decision(s) of {event_id}", deadline=60)

    async def acks_of(self, event_id: str) -> list[AckRequest]:
        """Every acknowledgment request on the acks outbox for ``event_id`` (read to its end)."""
        assert self.live is not None
        async with TopicReader(self.live, self.live.acks_topic) as reader:
            records = await reader.read_all()
        return [a for r in records if (a := AckRequest.from_json(r.value)).event_id == event_id]

    async def escalation_steps(self, prefix: str, count: int) -> list[str]:
        """The route ids starting with ``prefix`` on the routes outbox, in order, once ``count`` differ."""
        assert self.live is not None
        async with TopicReader(self.live, self.live.routes_topic) as reader:

            async def enough() -> list[str] | None:
                await reader.poll()
                ids = [i for r in reader.records if (i := orjson.loads(r.value)["route_id"]).startswith(prefix)]
                return ids if len(set(ids)) >= count else None

            return await until(enough, f"{count} escalation steps {prefix}*", deadline=90)

    async def overrides(self) -> list[dict[str, object]]:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.get(f"{self.url}/api/v1/teams/care-it/overrides") as answer:
                assert 200 == answer.status, await answer.text()
                body = await answer.json()
        return body["overrides"] if isinstance(body, dict) else body


async def test_a_restart_and_a_crash_lose_nothing(tmp_path: Path) -> None:
    """Override, conversation state and accepted events survive a stop and a SIGKILL."""
    service = DurableService(tmp_path)
    first, late = f"fb:m_{uuid.uuid4().hex[:10]}", f"fb:m_{uuid.uuid4().hex[:10]}"
    await service.start()
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(f"{service.url}/api/v1/teams/care-it/overrides", json=STRIKE) as answer:
                assert 201 == answer.status, await answer.text()
        await service.post(event(first))
        [decided] = await service.decisions_of(first, 1)
        assert decided["ack"] is not None
        service.stop()

        await service.start()  # stopped and started again
        assert ["sciopero"] == [o.get("note") for o in await service.overrides()]
        await service.post(event(first))  # the platform delivers the same message again
        again = await service.decisions_of(first, 2)
        assert again[0] == again[1]
        assert_one_acknowledgment(await service.acks_of(first))
        await service.post(event(late))  # accepted; the crash may come before it is decided
        service.kill()

        await service.start()  # SIGKILLed and started again
        assert ["sciopero"] == [o.get("note") for o in await service.overrides()]
        # Decided at least once: a crash between the decision and the commit repeats it, identically.
        decided_late = await service.decisions_of(late, 1)
        assert decided_late[0]["ack"] is not None
        assert all(decision == decided_late[0] for decision in decided_late)
        await service.post(event(first))
        await service.decisions_of(first, 3)
        assert_one_acknowledgment(await service.acks_of(first))
    finally:
        if service.process is not None:
            service.process.stop(timeout=60)


ROME = ZoneInfo("Europe/Rome")
CHAIN = ["next_on_call", "lead:luca", "lead:marta"]
REPEAT = 3
STEPS = len(CHAIN) * REPEAT


def coverage_with_chain(path: Path) -> Path:
    """The example coverage, with care-it's closed-mode escalation chain set to :data:`CHAIN`."""
    document = yaml.safe_load(EXAMPLE_COVERAGE.read_text())
    document["teams"]["care-it"]["escalation"] = {"closed": {"after": "10m", "chain": CHAIN, "repeat": REPEAT}}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def urgent_last_sunday(event_id: str) -> dict[str, object]:
    """An urgent DM to care-it at 08:00 last Sunday (closed): paged, and every step of its chain
    already due, so the sweep sends one per pass. Relative to now, as the service runs on the
    real clock, and inside the retention, so no sweep expires the escalation."""
    day = datetime.now(ROME).date() - timedelta(days=1)
    day -= timedelta(days=(day.weekday() - 6) % 7)
    at = datetime(day.year, day.month, day.day, 8, 0, tzinfo=ROME)
    return event(event_id) | {"text": "il servizio non funziona da stamattina", "at": at.isoformat()}


async def test_a_pending_escalation_walks_on_after_a_restart_and_a_crash(tmp_path: Path) -> None:
    """A paged message nobody claims: its chain goes on after a stop and after a SIGKILL, every
    step sent, in order, none skipped; a step repeats only after the SIGKILL, with its id."""
    service = DurableService(tmp_path, coverage_with_chain(tmp_path / "coverage.yaml"), sweep_interval=1.0)
    paged = f"fb:m_{uuid.uuid4().hex[:10]}"
    prefix = f"esc:{paged}:"
    await service.start()
    try:
        await service.post(urgent_last_sunday(paged))
        [decided] = await service.decisions_of(paged, 1)
        assert "page" == decided["action"], decided
        await service.escalation_steps(prefix, 2)
        service.stop()

        await service.start()  # stopped and started again: the chain goes on
        before_crash = await service.escalation_steps(prefix, 5)
        service.kill()

        await service.start()  # SIGKILLed and started again
        steps = await service.escalation_steps(prefix, STEPS)
    finally:
        if service.process is not None:
            service.process.stop(timeout=60)
    expected = [f"{prefix}{n}" for n in range(STEPS)]
    assert expected == list(dict.fromkeys(steps)), "steps missing, extra or out of order"
    # A clean stop keeps the table and the outbox in step: nothing before the crash repeats.
    assert len(before_crash) == len(set(before_crash)), before_crash
