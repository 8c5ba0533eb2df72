"""Broker failure on a real cluster: three Apache Kafka nodes, one SIGKILLed mid-stream.

One three-node KRaft cluster (:class:`brokers.apache.KafkaCluster`) serves the module.
Every round runs on fresh topics and a fresh consumer group, with the settings the
Kubernetes base passes its workers (:func:`tests.support.deployed.kubernetes_worker`:
the settings ConfigMap and the StatefulSet's env and arguments; a round sets only where
and under which names it runs, ``PER_RUN`` there). ``tests/deploy/test_deploy_files.py``
checks that compose passes the same, but for replication (one Kafka node there):

- topics: the deployment's partitions (``OFFHOURS_PARTITIONS=6``) and replication
  (``OFFHOURS_REPLICATION=3``), created before any worker starts as
  ``deploy/kafka/create-topics.sh`` does (the config topic compacted), with
  ``min.insync.replicas=2`` on each topic and as the brokers' default (so Faust's
  changelog topics have it too): a write is acknowledged by two replicas, and one
  node may die without the topics refusing writes;
- producers: the service's own. Ingest is :class:`edge.sink.KafkaEventSink`, idempotent
  as the deployment's ``offhours run --idempotent-producer`` makes it, ``acks="all"``. Faust's
  producer in the workers has ``producer_acks=-1`` (all) from
  :func:`streams.app.faust_options`, and no idempotence: faust-streaming turns it on
  only with ``processing_guarantee="exactly_once"``, so a producer retry across a
  leader change may write a decision or an outbox record twice (the accounting below
  allows identical copies only);
- tables in RocksDB (``OFFHOURS_STORE=rocksdb://`` of the StatefulSet), each worker with
  its own data directory as each pod has its own volume; the deployment's session
  timeout (10 s), reconciliation interval (5 s) and watchdog (the default, 15 s).

Round 1 streams events through three ``python -m streams.worker`` processes and
SIGKILLs the node leading the busiest events partition, then restarts it. Round 2
SIGKILLs that partition's leader and the worker holding it at the same moment. Each
round checks, from the topics themselves, what :mod:`tests.integration.test_failover`
checks (every event decided, copies of a decision identical, one acknowledgment per
event and identical copies of it) and more: every acknowledgment a decision promises is
on the outbox and no other, and every conversation's state in its changelog remembers
each of its events once and its latest message. Each prints how long leadership took
to move (kill until the metadata names a new leader) and how long processing stalled
(the largest gap between consecutive decisions after the kill, over all partitions and
over the busiest one).

What the numbers show (measured on a two-core machine): leadership moves after about
Kafka's ``broker.session.timeout.ms`` (9 s), when the controller fences the dead node.
Until then every ``acks=all`` write stalls, not only those to the dead node's
partitions: with three replicas on three nodes the dead node is in every partition's
in-sync set, and leaves it at the same fencing. So ingest and all decisions pause for
about that long, and the busiest partition longer when its worker died too (the
session timeout and a rebalance come on top).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient

from brokers.apache import KafkaCluster, kafka_version
from brokers.client import partition_of
from edge.sink import KafkaEventSink
from records.headers import HEADER_SOURCE, header_value, parse_position
from records.wire import parse_event
from streams.settings import Settings
from streams.worker import topic_names
from tests.conftest import ROOT, settings_for
from tests.support.deployed import kubernetes_worker
from tests.support.workers import TopicReader, WorkerProcess
from triage.state import ConversationState, event_digest

pytestmark = [pytest.mark.broker, pytest.mark.timeout(420)]

NODES = 3
DEPLOYED = kubernetes_worker()
PARTITIONS = 6
"""The deployment's partitions (``OFFHOURS_PARTITIONS`` of the Kubernetes base and of ``deploy/env``)."""
REPLICATION = 3
"""The deployment's replication on a three-node cluster (``OFFHOURS_REPLICATION``)."""
MIN_INSYNC = 2
WORKERS = 3
EVENTS = 1200
RATE = 60.0
"""Events per second the ingest produces: the stream lasts EVENTS / RATE = 20 s."""
KILL_AFTER = 0.25
"""The share of the stream produced before the kill."""
CONVERSATIONS = 120
ACCOUNTS = ["acme.it.facebook", "acme.it.instagram", "acme_it_x", "acme.us.facebook", "acme_us_x"]
START = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def cluster():
    """Three KRaft nodes; ``min.insync.replicas=2`` is the brokers' default for every topic."""
    with KafkaCluster(NODES, properties={"min.insync.replicas": str(MIN_INSYNC)}) as started:
        yield started


# --- the stream ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planned:
    event_id: str
    conversation: str
    partition: int
    at: datetime
    event: dict[str, object]


def plan(round_no: int) -> list[Planned]:
    """The round's customer messages, in the order ingest receives them."""
    planned = []
    for n in range(EVENTS):
        conversation = f"kc-{round_no}-{n % CONVERSATIONS}"
        at = START + timedelta(minutes=7 * n)
        event = {
            "id": f"kc-{round_no}-{n}",
            "account": ACCOUNTS[n % len(ACCOUNTS)],
            "channel": "facebook",
            "kind": "dm",
            "conversation": conversation,
            "author": {"id": f"user-{n % CONVERSATIONS}", "name": "Ana", "followers": n},
            "text": "il mio ordine non è arrivato" if n % 7 else "truffa sulla carta!",
            "lang": None,
            "at": at.isoformat(),
            "in_reply_to": None,
        }
        planned.append(Planned(event["id"], conversation, partition_of(conversation.encode(), PARTITIONS), at, event))
    return planned


async def stream_events(sink: KafkaEventSink, planned: list[Planned], started: float) -> dict[int, float]:
    """Publish ``planned`` at :data:`RATE`, one publisher per partition, as webhooks arrive.

    Each publisher sends its partition's events in order, a batch of whatever is due,
    and waits for the brokers' acknowledgment (``acks=all``), as the webhook edge does;
    a partition without a leader holds up its own publisher only. Returns the longest
    wait for one publish per partition (what a webhook would have waited).
    """
    by_partition: dict[int, list[tuple[int, Planned]]] = defaultdict(list)
    for n, item in enumerate(planned):
        by_partition[item.partition].append((n, item))
    longest: dict[int, float] = defaultdict(float)

    async def publisher(partition: int, items: list[tuple[int, Planned]]) -> None:
        i = 0
        while i < len(items):
            due_at = started + items[i][0] / RATE
            await asyncio.sleep(max(0.0, due_at - time.monotonic()))
            now = time.monotonic()
            batch = []
            while i < len(items) and started + items[i][0] / RATE <= now:
                batch.append(parse_event(items[i][1].event))
                i += 1
            began = time.monotonic()
            await sink.publish(batch)
            longest[partition] = max(longest[partition], time.monotonic() - began)

    await asyncio.gather(*(publisher(partition, items) for partition, items in by_partition.items()))
    return dict(longest)


# --- topics and metadata -------------------------------------------------------------


async def create_topics(settings: Settings) -> None:
    """Every topic of the pipeline as ``deploy/kafka/create-topics.sh`` makes them, plus
    ``min.insync.replicas``: the partitions and replication of the settings, the config
    topic compacted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(
                name,
                num_partitions=settings.partitions,
                replication_factor=settings.replication,
                topic_configs={
                    "min.insync.replicas": str(MIN_INSYNC),
                    **({"cleanup.policy": "compact"} if name == settings.config_topic else {}),
                },
            )
            for name in topic_names(settings)
        ])
    finally:
        await admin.close()


async def replication_of_app_topics(settings: Settings) -> dict[str, tuple[int, str]]:
    """Per topic of the round (the pipeline's and Faust's changelogs): its replication
    factor and its effective ``min.insync.replicas``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if settings.app_id in t or t in topic_names(settings)]
        described = await admin.describe_topics(names)
        replicas = {t["topic"]: len(t["partitions"][0]["replicas"]) for t in described}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
        min_isr: dict[str, str] = {}
        for response in configs:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    if entry["config_names"] == "min.insync.replicas":
                        min_isr[resource["resource_name"]] = entry["config_value"]
        return {name: (replicas[name], min_isr.get(name, "?")) for name in names}
    finally:
        await admin.close()


class LeaderWatch:
    """The leader of one partition, from aiokafka's cluster metadata."""

    def __init__(self, settings: Settings) -> None:
        self.client = AIOKafkaClient(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=3000)

    async def __aenter__(self) -> LeaderWatch:
        await self.client.bootstrap()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def leader(self, tp: TopicPartition) -> int | None:
        """The partition's leader (node id) as a broker reports it now; None when it has none."""
        self.client.add_topic(tp.topic)
        await self.client.force_metadata_update()
        leader = self.client.cluster.leader_for_partition(tp)
        return None if leader is None or leader < 0 else leader

    @property
    def controller(self) -> int | None:
        node = self.client.cluster.controller
        return None if node is None else node.nodeId

    async def wait_for_new_leader(self, tp: TopicPartition, old: int, deadline: float) -> int:
        while time.monotonic() < deadline:
            try:
                leader = await self.leader(tp)
            except Exception:  # the killed node was asked: ask again
                leader = None
            if leader is not None and leader != old:
                return leader
            await asyncio.sleep(0.1)
        raise AssertionError(f"{tp} had no leader other than node {old} by the deadline")


# --- reading the outcome -------------------------------------------------------------


@dataclass
class Outcome:
    decisions: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    timeline: list[tuple[int, int]] = field(default_factory=list)
    """``(timestamp ms, source partition)`` of every decision."""


def read_decisions(records: list, outcome: Outcome) -> None:
    for record in records:
        outcome.decisions[orjson.loads(record.value)["event_id"]].append(record.value)
        source = parse_position(header_value(record.headers, HEADER_SOURCE))
        outcome.timeline.append((record.timestamp, -1 if source is None else source[0]))


def largest_gap(stamps: list[int], after_ms: int) -> tuple[float, float]:
    """The largest gap (s) between consecutive stamps from the last one before ``after_ms``
    on, and how long after ``after_ms`` it ended (s)."""
    ordered = sorted(stamps)
    before = [s for s in ordered if s <= after_ms]
    window = ([before[-1]] if before else [after_ms]) + [s for s in ordered if s > after_ms]
    gaps = [(b - a, b) for a, b in zip(window, window[1:], strict=False)]
    if not gaps:
        return float("inf"), float("inf")
    gap, ended = max(gaps)
    return gap / 1000, (ended - after_ms) / 1000


async def latest_states(settings: Settings) -> dict[str, ConversationState]:
    """The last value of every key of the conversations table's changelog."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        changelog = next(t for t in await admin.list_topics() if t.startswith(settings.app_id) and t.endswith("conversations-changelog"))
    finally:
        await admin.close()
    async with TopicReader(settings, changelog) as reader:
        records = await reader.read_all()
    states: dict[str, ConversationState] = {}
    for record in records:
        if record.key is not None and record.value is not None:
            states[record.key.decode()] = ConversationState.from_bytes(record.value)
    return states


def state_problems(planned: list[Planned], states: dict[str, ConversationState]) -> list[str]:
    """Conversations whose stored state does not remember their events once each, or
    misses their latest message."""
    problems = []
    by_conversation: dict[str, list[Planned]] = defaultdict(list)
    for item in planned:
        by_conversation[item.conversation].append(item)
    for conversation, items in by_conversation.items():
        state = states.get(conversation)
        if state is None:
            problems.append(f"{conversation}: no state")
            continue
        remembered = [entry.digest for entry in state.recent]
        ids = {event_digest(item.event_id) for item in items}
        latest = max(item.at for item in items)
        if len(remembered) != len(set(remembered)):
            problems.append(f"{conversation}: an event remembered twice")
        if not set(remembered) <= ids or len(remembered) != min(len(items), 16):
            problems.append(f"{conversation}: remembers {len(remembered)} events, {len(items)} sent")
        if event_digest(items[-1].event_id) not in remembered:
            problems.append(f"{conversation}: its latest event is not remembered")
        if state.customer_at != int(latest.timestamp()):
            problems.append(f"{conversation}: customer_at {state.customer_at}, latest message {int(latest.timestamp())}")
    return problems


async def check_acks(settings: Settings, outcome: Outcome) -> dict[str, int]:
    """test_failover's accounting of the acks outbox, and that it holds exactly the
    acknowledgments the decisions promise."""
    async with TopicReader(settings, settings.acks_topic) as acks:
        records = await acks.read_all()
    by_ack_id: dict[str, set[bytes]] = defaultdict(set)
    copies: Counter[str] = Counter()
    ack_ids_per_event: dict[str, set[str]] = defaultdict(set)
    for record in records:
        ack = orjson.loads(record.value)
        by_ack_id[ack["ack_id"]].add(record.value)
        copies[ack["ack_id"]] += 1
        ack_ids_per_event[ack["event_id"]].add(ack["ack_id"])
    different = {ack_id for ack_id, values in by_ack_id.items() if len(values) > 1}
    assert set() == different, f"acks that differ between copies: {sorted(different)[:5]}"
    assert [] == [e for e, ids in ack_ids_per_event.items() if len(ids) > 1], "an event with two acknowledgments"
    promised = {e for e, values in outcome.decisions.items() if orjson.loads(values[0])["ack"] is not None}
    assert promised == set(ack_ids_per_event), (
        f"decided with an ack but none on the outbox: {sorted(promised - set(ack_ids_per_event))[:5]}; "
        f"on the outbox without one: {sorted(set(ack_ids_per_event) - promised)[:5]}"
    )
    return {"acks": len(by_ack_id), "ack_copies": sum(copies.values()) - len(copies)}


def worker_log_findings(workers: list[WorkerProcess]) -> dict[str, int]:
    """How often the workers' stderr logs name the watchdog, reconciliation re-issues and errors."""
    text = "\n".join(w.log_path.read_text(errors="replace") for w in workers)
    return {
        "watchdog": len(re.findall(r"watchdog: events partition", text)),
        "reissued": len(re.findall(r"(?i)reconcil\w*:.*re-?issu", text)),
        "tracebacks": text.count("Traceback"),
        "errors": len(re.findall(r"\[ERROR\]|\bERROR\b", text)),
    }


# --- a round -------------------------------------------------------------------------


async def run_round(cluster: KafkaCluster, round_no: int, tmp_path: Path, *, kill_worker: bool) -> dict[str, object]:
    down = [node.node_id for node in cluster.nodes if not node.running]
    assert [] == down, f"nodes down before round {round_no} began"
    name = f"kc-{round_no}-{time.time_ns() % 10**8}"
    # The Kubernetes workers' settings, as deploy/ passes them; the round sets only PER_RUN.
    settings = settings_for(cluster, name, tmp_path / name, **DEPLOYED.pipeline())
    assert (PARTITIONS, REPLICATION, "rocksdb://") == (settings.partitions, settings.replication, settings.store)
    await create_topics(settings)
    planned = plan(round_no)
    ids = {item.event_id for item in planned}
    busiest = Counter(item.partition for item in planned).most_common(1)[0][0]
    tp = TopicPartition(settings.events_topic, busiest)

    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    workers = [
        WorkerProcess.spawn(i, settings.with_overrides(data_dir=tmp_path / name / f"worker-{i}"), tmp_path / name)
        for i in range(WORKERS)
    ]
    outcome = Outcome()
    try:
        await asyncio.gather(*(w.wait_ready(90) for w in workers))
        ready = time.monotonic() - began
        topics = await replication_of_app_topics(settings)
        wrong = {t: v for t, v in topics.items() if v != (REPLICATION, str(MIN_INSYNC))}
        assert {} == wrong, f"topics not replicated {REPLICATION} times with min.insync.replicas={MIN_INSYNC}"

        async with (
            TopicReader(settings, settings.decisions_topic) as decisions,
            LeaderWatch(settings) as watch,
            KafkaEventSink(settings.bootstrap_servers, settings.events_topic, idempotent=DEPLOYED.idempotent) as sink,
        ):
            started = time.monotonic()
            streaming = asyncio.create_task(stream_events(sink, planned, started))
            kill_at = started + KILL_AFTER * EVENTS / RATE
            while time.monotonic() < kill_at:
                read_decisions(await decisions.poll(), outcome)
            assert outcome.decisions, "nothing decided before the kill"

            leader = await watch.leader(tp)
            assert leader is not None
            led = {p for p in range(PARTITIONS) if await watch.leader(TopicPartition(settings.events_topic, p)) == leader}
            elsewhere = set(range(PARTITIONS)) - led
            controller = watch.controller
            holders = [w for w in workers if busiest in w.partitions]
            victim = holders[0] if kill_worker and holders else None
            killed_epoch_ms = int(time.time() * 1000)
            killed = time.monotonic()
            cluster.kill(leader)
            if victim is not None:
                victim.kill()

            async def moved() -> tuple[int, float]:
                new = await watch.wait_for_new_leader(tp, leader, killed + 60)
                return new, time.monotonic() - killed

            async def read_until(done: asyncio.Future) -> None:
                while not done.done():
                    read_decisions(await decisions.poll(), outcome)

            moving = asyncio.ensure_future(moved())
            await asyncio.gather(moving, read_until(moving))
            new_leader, leadership_moved = moving.result()

            # Restart the killed node while the stream goes on. Launched from this thread:
            # a node started from a pool thread dies when that thread ends.
            node = cluster.node(leader)
            await asyncio.to_thread(node.prepare)
            node.launch()
            restarting = asyncio.ensure_future(asyncio.to_thread(node.wait_ready, time.monotonic() + node.start_timeout))
            await read_until(restarting)
            restarting.result()
            restarted = time.monotonic() - killed

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not (streaming.done() and ids <= outcome.decisions.keys()):
                read_decisions(await decisions.poll(), outcome)
            longest_publish = await streaming
            missing = ids - outcome.decisions.keys()
            assert not missing, (
                f"round {round_no}: {len(missing)} events never decided, e.g. {sorted(missing)[:5]}\n"
                + "\n".join(w.log() for w in workers)
            )
            finished = time.monotonic() - started
            # Everything, copies written late included.
            await asyncio.sleep(1.0)
            read_decisions(await decisions.poll(), outcome)

        different = {e for e, copies in outcome.decisions.items() if len(set(copies)) > 1}
        assert set() == different, f"events with different decisions: {sorted(different)[:5]}"
        acks = await check_acks(settings, outcome)
        problems = state_problems(planned, await latest_states(settings))
        assert [] == problems, f"conversation state after the kill: {problems[:10]}"

        stall_all, stall_all_end = largest_gap([t for t, _ in outcome.timeline], killed_epoch_ms)
        stall_else, _ = largest_gap([t for t, p in outcome.timeline if p in elsewhere], killed_epoch_ms)
        stall_p, stall_p_end = largest_gap([t for t, p in outcome.timeline if p == busiest], killed_epoch_ms)
        return {
            "ready": ready,
            "partition": busiest,
            "events_on_partition": sum(1 for item in planned if item.partition == busiest),
            "killed_node": leader,
            "controller": controller,
            "new_leader": new_leader,
            "worker": None if victim is None else victim.index,
            "leadership_moved": leadership_moved,
            "restarted": restarted,
            "stall_all": stall_all,
            "stall_all_end": stall_all_end,
            "led": sorted(led),
            "elsewhere": sorted(elsewhere),
            "stall_elsewhere": stall_else,
            "stall_partition": stall_p,
            "stall_partition_end": stall_p_end,
            "longest_publish": longest_publish[busiest],
            "longest_publish_led": max(v for p, v in longest_publish.items() if p in led),
            "longest_publish_elsewhere": max((v for p, v in longest_publish.items() if p in elsewhere), default=0.0),
            "stream_done": finished,
            "duplicates": sum(len(c) - 1 for c in outcome.decisions.values()),
            **acks,
            **worker_log_findings(workers),
        }
    finally:
        for worker in workers:
            worker.stop()


def report(round_no: int, what: str, r: dict[str, object]) -> None:
    print(
        f"\nround {round_no} ({what}): busiest events partition {r['partition']} ({r['events_on_partition']} events), "
        f"leader node {r['killed_node']} killed (controller in metadata: node {r['controller']})"
        + (f", worker {r['worker']} killed with it" if r["worker"] is not None else "")
        + f"; workers ready in {r['ready']:.1f} s\n"
        f"  leadership moved to node {r['new_leader']} after {r['leadership_moved']:.1f} s; "
        f"killed node back after {r['restarted']:.1f} s\n"
        f"  processing stall (largest gap between decisions): {r['stall_partition']:.1f} s on partition {r['partition']} "
        f"(ended {r['stall_partition_end']:.1f} s after the kill), {r['stall_all']:.1f} s over all partitions "
        f"(ended {r['stall_all_end']:.1f} s after the kill), {r['stall_elsewhere']:.1f} s over the events partitions "
        f"{r['elsewhere']} led by the other nodes\n"
        f"  longest ingest publish: {r['longest_publish']:.1f} s to partition {r['partition']}, "
        f"{r['longest_publish_led']:.1f} s to the partitions {r['led']} the killed node led, "
        f"{r['longest_publish_elsewhere']:.1f} s to the others; every event decided {r['stream_done']:.1f} s after the stream began\n"
        f"  {r['duplicates']} duplicate decisions (identical), {r['acks']} acks ({r['ack_copies']} identical copies); "
        f"worker logs: {r['watchdog']} watchdog re-reads, {r['reissued']} reconciliation re-issue lines, "
        f"{r['tracebacks']} tracebacks, {r['errors']} ERROR lines"
    )


class TestKafkaCluster:
    async def test_sigkill_of_the_busiest_partitions_leader_loses_nothing(self, cluster: KafkaCluster, tmp_path: Path) -> None:
        """Round 1: the leader of the busiest events partition dies mid-stream and comes back."""
        report(1, "leader killed", await run_round(cluster, 1, tmp_path, kill_worker=False))

    async def test_sigkill_of_the_leader_and_a_worker_together_loses_nothing(self, cluster: KafkaCluster, tmp_path: Path) -> None:
        """Round 2: the partition's leader and the worker holding it die at the same moment."""
        report(2, "leader and worker killed", await run_round(cluster, 2, tmp_path, kill_worker=True))


def test_the_kafka_we_test_on_is_the_kafka_compose_deploys() -> None:
    """brokers/kafka-broker.pom.xml names the version of the default image in deploy/compose.yaml."""
    images = {
        service: spec["image"]
        for service, spec in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items()
        if "apache/kafka" in str(spec.get("image", ""))
    }
    tags = {service: re.fullmatch(r"\$\{KAFKA_IMAGE:-apache/kafka:([^}]+)\}", image) for service, image in images.items()}
    assert images and all(tags.values()), f"compose names the Kafka image without a default apache/kafka tag: {images}"
    assert {service: kafka_version() for service in tags} == {service: m.group(1) for service, m in tags.items()}
