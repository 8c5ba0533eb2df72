"""A stop loses nothing (issue 21): ``offhours run`` stopped with SIGTERM under load, then started again.

Sixty customers write at a closed time (Messenger and WhatsApp, webhooks signed as Meta
signs them, each answered 200). The fake Graph API (a real local server) takes
:data:`SLOW` s per request, and refuses the first :data:`WAITING` sends with its rate
limit, whose retry the responders schedule far beyond the drain. Once half the
customers are acknowledged the service gets SIGTERM: deliveries are in flight, others
queued, the refused ones waiting for their retry. It must answer a webhook during the
drain with 503 and ``Retry-After`` (``/readyz`` 503, ``/healthz`` 200), stop within
``OFFHOURS_DRAIN_TIMEOUT`` plus the time its worker and broker take to stop, and say what
it handed back. Started again with the same settings, every customer is acknowledged
(the ones handed back too), none twice, none missing.

Run on the embedded broker (Tansu, memory only: what is left goes to the file the next
start replays), on the durable embedded broker and on Apache Kafka
(``OFFHOURS_BROKER_URL``): handed back to its topic, with a dead letter. A last run has
nothing waiting for a retry and the default drain: every customer is acknowledged before
the process exits. The customers write "now", so the test holds on any date.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from offhours.drain import LEFT_FILE
from responders.fakes import FakeGraph, FakeSlack
from streams.settings import Settings
from tests.conftest import settings_for
from tests.support.service import ServiceProcess, service_env, until
from tests.support.workers import TopicReader

pytestmark = pytest.mark.broker

CUSTOMERS = 60
WAITING = 4
"""Customers whose first send the fake refuses with its rate limit (retried after 30-60 s)."""
SLOW = 0.5
"""Seconds the fake Graph API takes to answer each send."""
CONCURRENCY = 12
DRAIN = 6.0
STOP_MARGIN = 15.0
"""Seconds a stop may take beyond the drain: the web server, the worker (Faust) and the broker stop."""

APP_SECRET = "drain-meta-app-secret"
TOKEN = "EAAG-drain-page-token"
PAGE = "112233445566001"
PHONE_NUMBER_ID = "106540352240001"
ROME = ZoneInfo("Europe/Rome")

COVERAGE = """\
teams:
  care-it:
    name: Assistenza Italia
    timezone: Europe/Rome
    locale: it
    accounts: [acme.it.facebook, acme.it.whatsapp]
    hours:
      mon-fri: ["09:00-18:00 open"]
    overrides:
      - {{from: "{closed_from}", to: "{closed_to}", mode: closed, note: chiuso}}
    on_call:
      rotation: {{members: [marta], start: "{rotation}", every: 1w}}
    staff:
      marta: {{name: Marta Rossi, notify: ["slack:{slack}"]}}
"""


class SlowGraph(FakeGraph):
    """The fake Graph API, :data:`SLOW` s per request: deliveries stay in flight."""

    async def record(self, request: web.Request) -> Any:
        await asyncio.sleep(SLOW)
        return await super().record(request)


def local(at: datetime) -> str:
    return at.astimezone(ROME).strftime("%Y-%m-%d %H:%M")


@dataclass
class Customer:
    """One customer and the signed webhook of their message."""

    number: int
    run: str
    at: datetime

    @property
    def whatsapp(self) -> bool:
        return self.number % 2 == 1

    @property
    def user(self) -> str:
        return f"4477009{self.number:05d}" if self.whatsapp else f"2468013579{self.number:05d}"

    def body(self) -> dict[str, Any]:
        epoch = int(self.at.timestamp())
        text = f"ordine {self.run}-{self.number} non arrivato"
        if self.whatsapp:
            return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
                "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID},
                    "contacts": [{"profile": {"name": f"Cliente {self.number}"}, "wa_id": self.user}],
                    "messages": [{"from": self.user, "id": f"wamid.{self.run}{self.number:05d}",
                                  "timestamp": str(epoch), "type": "text", "text": {"body": text}}]}}]}]}
        return {"object": "page", "entry": [{"id": PAGE, "time": epoch * 1000 + 7, "messaging": [{
            "sender": {"id": self.user}, "recipient": {"id": PAGE}, "timestamp": epoch * 1000,
            "message": {"mid": f"m_{self.run}_{self.number}", "text": text}}]}]}


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    digest = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def acknowledged(graph: FakeGraph) -> list[str]:
    """The recipient of every send the fake accepted, in order."""
    found = []
    for answer in graph.answers:
        if answer.ok and answer.request.path.endswith("/messages"):
            sent = answer.request.json()
            found.append(sent.get("to") or sent.get("recipient", {}).get("id"))
    return found


@dataclass
class Counts:
    before_stop: int = 0
    at_exit: int = 0
    after_restart: int = 0
    paged: int = 0
    left: list[str] = field(default_factory=list)
    stop_seconds: float = 0.0
    stop_lines: list[str] = field(default_factory=list)


async def stop_under_load(
    tmp_path: Path, settings: Settings, env: dict[str, str], *, waiting: int = WAITING, drain: float = DRAIN
) -> Counts:
    """The stop of the module doc; with ``waiting`` 0 nothing waits for a retry and the drain
    must finish everything before the process exits."""
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    customers = [Customer(n, run, now - timedelta(seconds=30)) for n in range(CUSTOMERS)]
    late = Customer(CUSTOMERS, run, now - timedelta(seconds=30))
    graph, slack = SlowGraph({TOKEN}), FakeSlack()
    for customer in [*customers, late]:
        graph.add_customer(customer.user, customer.at)
    await graph.start()
    await slack.start()
    coverage = tmp_path / "coverage.yaml"
    coverage.write_text(COVERAGE.format(
        closed_from=local(now - timedelta(days=1)), closed_to=local(now + timedelta(days=1)),
        rotation=local(now - timedelta(days=30)), slack=slack.webhook_url,
    ))
    env = env | {
        "OFFHOURS_COVERAGE_FILE": str(coverage),
        "OFFHOURS_DRAIN_TIMEOUT": str(drain),
        "OFFHOURS_EDGE__META_APP_SECRET": APP_SECRET,
        "OFFHOURS_EDGE__ACCOUNTS": orjson.dumps({f"fb:{PAGE}": "acme.it.facebook",
                                                 f"wa:{PHONE_NUMBER_ID}": "acme.it.whatsapp"}).decode(),
        "OFFHOURS_RESPONDERS__DELIVER": "true",
        "OFFHOURS_RESPONDERS__GRAPH_BASE_URL": graph.url,
        "OFFHOURS_RESPONDERS__EGRESS_ALLOW": '["127.0.0.1"]',
        "OFFHOURS_RESPONDERS__CONCURRENCY": str(CONCURRENCY),
        "OFFHOURS_RESPONDERS__BACKOFF_BASE": "60",
        "OFFHOURS_RESPONDERS__ACCOUNTS": orjson.dumps({
            "acme.it.facebook": {"page_id": PAGE, "access_token": TOKEN},
            "acme.it.whatsapp": {"phone_number_id": PHONE_NUMBER_ID, "access_token": TOKEN},
        }).decode(),
    }
    counts = Counts()
    memory_only = settings.broker_url is None and env.get("OFFHOURS_EMBEDDED_BROKER") != "kafka"
    first = second = None
    try:
        first = ServiceProcess.spawn("run", settings, tmp_path / "run-1.log", env=env)
        url = await first.wait_ready()
        if waiting:
            graph.fail_next("rate_limit", waiting)
        async with aiohttp.ClientSession() as http:
            for customer in customers:
                raw, headers = signed(customer.body())
                async with http.post(f"{url}/webhooks/meta", data=raw, headers=headers) as answer:
                    assert 200 == answer.status, await answer.text()

            await graph.wait_until(lambda g: len(acknowledged(g)) >= CUSTOMERS // 2, timeout=60)
            counts.before_stop = len(set(acknowledged(graph)))
            began = time.monotonic()
            first.process.send_signal(signal.SIGTERM)

            async def refused() -> bool | None:
                async with http.get(f"{url}/readyz") as answer:
                    return True if answer.status == 503 else None

            await until(refused, "/readyz to turn 503 once the stop began", deadline=drain)
            async with http.get(f"{url}/healthz") as answer:
                assert 200 == answer.status
            raw, headers = signed(late.body())
            async with http.post(f"{url}/webhooks/meta", data=raw, headers=headers) as answer:
                assert 503 == answer.status, await answer.text()
                assert answer.headers.get("Retry-After", "").isdigit()
            assert counts.before_stop < CUSTOMERS - waiting, "the stop came too late to find work in flight"

        code = await asyncio.to_thread(first.process.wait, drain + STOP_MARGIN + 30)
        counts.stop_seconds = time.monotonic() - began
        counts.at_exit = len(set(acknowledged(graph)))
        counts.stop_lines = [line for line in first.lines if line.startswith(("stopping", "drained", "handed back", "stopped"))]
        assert 0 == code, first.output()
        assert counts.stop_seconds <= drain + STOP_MARGIN, first.output()
        if not waiting:
            assert any(line.startswith("drained:") for line in first.lines), first.output()
            assert CUSTOMERS == counts.at_exit, first.output()
        else:
            assert any(line.startswith("handed back:") for line in first.lines), first.output()
            assert memory_only == (settings.data_dir / LEFT_FILE).exists(), first.output()

        second = ServiceProcess.spawn("run", settings, tmp_path / "run-2.log", env=env)
        await second.wait_ready()
        if memory_only and waiting:
            assert any(line.startswith("replayed:") for line in second.lines), second.output()
            assert not (settings.data_dir / LEFT_FILE).exists()
        users = {customer.user for customer in customers}
        pages = lambda: {c.user for c in customers if f"{run}-{c.number}" in " ".join(  # noqa: E731
            orjson.dumps(a.request.json()).decode() for a in slack.answers if a.ok)}

        async def everyone() -> bool | None:
            return True if users <= set(acknowledged(graph)) | pages() else None

        try:
            await until(everyone, "every customer acknowledged or handed to staff", deadline=90)
        except AssertionError as exc:
            missing = sorted(users - set(acknowledged(graph)) - pages())
            raise AssertionError(f"{exc}: {missing}; {await outbox_state(settings)}\n{second.output()}") from None
        finally:
            sent = acknowledged(graph)
            counts.after_restart = len(set(sent))
            counts.paged = len(pages() - set(sent))
            counts.left = sorted(users - set(sent) - pages())
        repeated = {user: sent.count(user) for user in set(sent) if sent.count(user) > 1}
        assert {} == repeated, "a customer acknowledged twice"
        assert late.user not in sent, "the webhook refused during the stop was not accepted"
        if settings.broker_url is not None and waiting:
            async with TopicReader(settings, settings.dead_letter_topic) as reader:
                letters = [orjson.loads(record.value) for record in await reader.read_all()]
            stopped = [letter for letter in letters if letter["reason"].startswith("stopped before delivering it")]
            assert waiting == len(stopped), letters
            assert all(letter["topic"] == settings.acks_topic for letter in stopped), stopped
        second.stop(timeout=60)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop(timeout=60)
        await graph.stop()
        await slack.stop()
    return counts


async def outbox_state(settings: Settings) -> str:
    """Every record of the acks topic and the group's committed offsets there (on Apache Kafka),
    to say where an acknowledgment stopped."""
    if settings.broker_url is None:
        return "(the embedded broker is gone)"
    async with TopicReader(settings, settings.acks_topic) as reader:
        records = [(r.partition, r.offset, orjson.loads(r.value)["ack_id"]) for r in await reader.read_all()]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        tps = [TopicPartition(settings.acks_topic, p) for p in range(settings.partitions)]
        committed = await admin.list_consumer_group_offsets(settings.app_id, partitions=tps)
    finally:
        await admin.close()
    return f"acks topic: {records}; committed: {committed}"


def report(broker: str, counts: Counts) -> str:
    return (f"{broker}: {CUSTOMERS} customers, SIGTERM with {counts.before_stop} acknowledged; "
            f"{counts.at_exit} acknowledged when the process exited after {counts.stop_seconds:.1f} s; "
            f"after the restart {counts.after_restart} acknowledged, {counts.paged} handed to staff, "
            f"{len(counts.left)} left; stop: {' | '.join(counts.stop_lines)}")


def embedded(tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """Settings and environment of ``offhours run`` on the embedded broker it starts (Tansu)."""
    settings = Settings(coverage_file=tmp_path / "coverage.yaml", app_id=f"drain-{uuid.uuid4().hex[:8]}",
                        data_dir=tmp_path / "data", partitions=2, session_timeout=3.0, reconcile_interval=2.0)
    env = service_env(settings)
    env.pop("OFFHOURS_BROKER_URL", None)
    env.pop("OFFHOURS_ONE_RECORD_BATCHES", None)
    return settings, env


async def test_a_stop_under_load_on_the_embedded_broker_loses_nothing(tmp_path: Path) -> None:
    """Tansu, started by ``offhours run`` (memory only): what the stop left is in the file the next start replays."""
    counts = await stop_under_load(tmp_path, *embedded(tmp_path))
    print(report("embedded Tansu", counts))
    assert [] == counts.left


async def test_with_nothing_waiting_for_a_retry_the_stop_finishes_everything_first(tmp_path: Path) -> None:
    """The default drain (20 s), no retry pending: every customer is acknowledged before the process exits."""
    counts = await stop_under_load(
        tmp_path, *embedded(tmp_path), waiting=0, drain=Settings.model_fields["drain_timeout"].default
    )
    print(report("embedded Tansu, default drain, no retry pending", counts))
    assert [] == counts.left


async def test_a_stop_under_load_on_the_durable_embedded_broker_loses_nothing(tmp_path: Path) -> None:
    """``OFFHOURS_EMBEDDED_BROKER=kafka`` (Apache Kafka started by ``offhours run``, data on disk):
    the deliveries handed back go back on their topic, with a dead letter, and the next start delivers them."""
    settings, env = embedded(tmp_path)
    env["OFFHOURS_EMBEDDED_BROKER"] = "kafka"
    counts = await stop_under_load(tmp_path, settings, env)
    print(report("durable embedded Apache Kafka", counts))
    assert [] == counts.left


async def test_a_stop_under_load_on_apache_kafka_loses_nothing(
    kafka_broker: Any, tmp_path: Path, unique_name: str
) -> None:
    """Apache Kafka (``OFFHOURS_BROKER_URL``): the deliveries handed back go back on their topic, with a dead letter."""
    settings = settings_for(kafka_broker, unique_name, tmp_path / "data", partitions=2, session_timeout=3.0,
                            coverage_file=tmp_path / "coverage.yaml")
    counts = await stop_under_load(tmp_path, settings, service_env(settings))
    print(report("Apache Kafka", counts))
    assert [] == counts.left
