"""What the pipeline benchmarks share: the event mix, the machine line, memory readings,
per-run settings, topic set-up and an output counter.

The event mix is generated once per run from a seed, so every stage of
:mod:`bench.pipeline` sees the very same payloads. Nothing here reads the environment:
child processes get their settings through an environment that :func:`worker_env`
builds from a :class:`~streams.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import random
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_COVERAGE = ROOT / "examples" / "coverage.yaml"
SEED = 20261123
WEEK_START = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
"""Monday; the mix spreads its instants over the following seven days (Black Friday included)."""

PARTITIONS = 4
INVALID_SHARE = 0.05
REPEAT_SHARE = 0.30

CHANNEL_OF_SUFFIX = {"facebook": "facebook", "instagram": "instagram", "whatsapp": "whatsapp", "x": "x"}
PREFIX_OF_CHANNEL = {"facebook": "fb", "instagram": "ig", "whatsapp": "wa", "x": "x", "telegram": "tg"}

TEXTS = (
    "Il mio ordine non è arrivato",
    "Ci siete? L'ordine è il 4471",
    "Vorrei cambiare la taglia della giacca",
    "Quando riaprite il negozio di via Roma?",
    "My package still hasn't arrived, order 9921",
    "Can I change the delivery address?",
    "Thanks for the quick help yesterday!",
    "L'app non funziona da stamattina",
    "I think this is a scam, unauthorized charge on my card",
    "Do you ship to Canada?",
)


@dataclass(frozen=True, slots=True)
class Target:
    """One of issue 20's targets as a run measured it: ``python -m bench`` prints them all.

    ``name`` says what is measured ("storm latency, deployed shape"), ``wanted`` the
    target in words ("p99 <= 100 ms at 500 ev/s, sustained 60 s"), ``measured`` what this
    run saw ("p99 84 ms at 500 ev/s; highest sustained 700 ev/s") and ``met`` whether
    it meets the target.
    """

    name: str
    wanted: str
    measured: str
    met: bool

    def line(self) -> str:
        """One markdown table row: | target | wanted | measured | met/missed |."""
        return f"| {self.name} | {self.wanted} | {self.measured} | {'met' if self.met else '**missed**'} |"


def targets_table(targets: Sequence[Target]) -> str:
    """The markdown table of ``targets``, in order."""
    head = "| target | wanted | measured | result |\n|---|---|---|---|"
    return "\n".join([head, *(target.line() for target in targets)])


@dataclass(frozen=True, slots=True)
class Payload:
    """One input record: the conversation key and the raw value, as a producer writes them."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class MixSummary:
    """What the generated mix contains (printed beside the results)."""

    events: int
    conversations: int
    repeats: int
    invalid: int
    teams: int
    accounts: int


def channel_of(account: str) -> str:
    """The channel an example account answers on, from its name (``acme.it.whatsapp``)."""
    suffix = account.replace("_", ".").rsplit(".", 1)[-1]
    return CHANNEL_OF_SUFFIX.get(suffix, "generic")


def example_accounts(coverage_file: Path = EXAMPLE_COVERAGE) -> list[str]:
    """Every account of every team of the coverage file, in file order."""
    from schedules import load_coverage

    coverage = load_coverage(coverage_file)
    return [account for team in coverage.teams.values() for account in team.accounts]


def event_mix(count: int, seed: int = SEED, accounts: Sequence[str] | None = None) -> tuple[list[Payload], MixSummary]:
    """``count`` realistic events: several teams and modes, 30 % repeats, 5 % invalid.

    Instants are spread uniformly over the week from :data:`WEEK_START`, so open,
    reduced and closed hours (and the Black Friday override) all occur. A repeat is a
    later message in an earlier conversation (one in ten of them the very same message
    redelivered, one in five a staff ``agent_reply``). Invalid events are split between
    malformed JSON, a missing field, a time without offset and an unknown account.
    """
    rng = random.Random(seed)
    accounts = list(accounts or example_accounts())
    payloads: list[Payload] = []
    conversations: list[dict[str, object]] = []
    repeats = invalid = 0
    span = 7 * 24 * 3600
    for n in range(count):
        roll = rng.random()
        if roll < INVALID_SHARE:
            payloads.append(_invalid(n, rng, accounts))
            invalid += 1
            continue
        if roll < INVALID_SHARE + REPEAT_SHARE and conversations:
            earlier = rng.choice(conversations)
            repeats += 1
            if rng.random() < 0.1:
                payloads.append(Payload(str(earlier["conversation"]).encode(), orjson.dumps(earlier)))
                continue
            event = dict(earlier)
            at = dt.datetime.fromisoformat(str(earlier["at"])) + dt.timedelta(minutes=rng.randint(1, 180))
            event.update(id=f"{earlier['id']}-{n}", at=at.isoformat().replace("+00:00", "Z"))
            if rng.random() < 0.2:
                event.update(kind="agent_reply", author={"id": "staff_1", "name": "Marta Rossi"})
            else:
                event["text"] = rng.choice(TEXTS)
        else:
            account = rng.choice(accounts)
            channel = channel_of(account)
            prefix = PREFIX_OF_CHANNEL.get(channel, "gen")
            kind = rng.choices(("dm", "comment", "mention"), weights=(70, 18, 12))[0]
            at = WEEK_START + dt.timedelta(seconds=rng.randrange(span))
            event = {
                "id": f"{prefix}:m_{n}",
                "account": account,
                "channel": channel,
                "kind": kind,
                "conversation": f"{prefix}:{account}:user_{n}",
                "author": {"id": f"user_{n}", "name": f"Customer {n}", "followers": rng.randrange(50_000)},
                "text": rng.choice(TEXTS),
                "lang": None,
                "at": at.isoformat().replace("+00:00", "Z"),
                "in_reply_to": None,
            }
            conversations.append(event)
        payloads.append(Payload(str(event["conversation"]).encode(), orjson.dumps(event)))
    summary = MixSummary(
        events=count,
        conversations=len(conversations),
        repeats=repeats,
        invalid=invalid,
        teams=2,
        accounts=len(accounts),
    )
    return payloads, summary


def _invalid(n: int, rng: random.Random, accounts: Sequence[str]) -> Payload:
    account = rng.choice(accounts)
    base = {
        "id": f"bad:{n}",
        "account": account,
        "channel": channel_of(account),
        "kind": "dm",
        "conversation": f"bad:{n}",
        "author": {"id": f"user_{n}"},
        "text": "?",
        "at": (WEEK_START + dt.timedelta(hours=n % 168)).isoformat(),
    }
    flaw = n % 4
    if flaw == 0:
        return Payload(f"bad:{n}".encode(), b'{"id": "bad:' + str(n).encode() + b'", "account": ')
    if flaw == 1:
        del base["author"]
    elif flaw == 2:
        base["at"] = "2026-11-24T21:00:00"
    else:
        base["account"] = "acme.unknown.facebook"
    return Payload(f"bad:{n}".encode(), orjson.dumps(base))


def machine_line() -> str:
    """``date; N cores (nproc), CPU model; Python x.y.z``."""
    return (
        f"{dt.date.today().isoformat()}; {os.cpu_count()} cores (nproc), {cpu_model()}; "
        f"Python {platform.python_version()}"
    )


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def status_kib(field_name: str, pid: int | str = "self") -> int | None:
    """A ``/proc/PID/status`` memory field in KiB (``VmHWM`` peak RSS, ``VmRSS`` current)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f} MiB"


def broker_name(flavour: str) -> str:
    """How a report names the broker of a ``flavour``."""
    return "Apache Kafka (one KRaft node)" if flavour == "kafka" else "Tansu (embedded)"


def run_settings(broker_url: str, run: str, data_dir: Path, *, flavour: str, **changes: object) -> Settings:
    """Settings of one stage: its own app id and topics, a short session timeout.

    ``flavour`` is the broker's (``tansu`` or ``kafka``, ``Settings.broker_flavour``):
    each stage runs with the settings the service uses on that broker (on Tansu one
    record per produce batch, the short fetch wait, as ``offhours run`` does).
    One worker per stage, so the session timeout only sets how long the group join
    waits (about half of it on Tansu).
    """
    base = Settings(broker_url=broker_url, broker_flavour=flavour)
    return base.with_overrides(
        app_id=f"bench-{run}",
        events_topic=f"bench-{run}.events",
        decisions_topic=f"bench-{run}.decisions",
        acks_topic=f"bench-{run}.acks",
        routes_topic=f"bench-{run}.routes",
        dead_letter_topic=f"bench-{run}.deadletter",
        config_topic=f"bench-{run}.config",
        partitions=PARTITIONS,
        session_timeout=2.0,
        data_dir=data_dir,
        **changes,
    )


def worker_env(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The environment that makes ``Settings()`` in a child equal to ``settings``.

    ``base`` is the parent's environment; its own ``OFFHOURS_`` variables are dropped
    so that the child sees exactly the stage's settings.
    """
    env = {k: v for k, v in base.items() if not k.startswith("OFFHOURS_")}
    names = (
        "broker_url", "coverage_file", "events_topic", "decisions_topic", "acks_topic",
        "routes_topic", "dead_letter_topic", "config_topic", "partitions", "store",
        "app_id", "session_timeout", "data_dir",
    )
    for name in names:
        env[f"OFFHOURS_{name.upper()}"] = str(getattr(settings, name))
    if settings.broker_flavour is not None:
        env["OFFHOURS_BROKER_FLAVOUR"] = settings.broker_flavour
    env["OFFHOURS_ONE_RECORD_BATCHES"] = "true" if settings.one_record_batches else "false"
    return env


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = PARTITIONS) -> None:
    """Create ``names`` with ``partitions`` partitions; existing topics are kept."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names if n not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, payloads: Sequence[Payload]) -> float:
    """Write every payload to ``topic`` (keyed, ``acks=all``); returns the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, key=p.key, value=p.value) for p in payloads]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()  # a topic created by another client
            partitions = consumer.partitions_for_topic(topic) or set()
        from aiokafka import TopicPartition

        tps = [TopicPartition(topic, p) for p in partitions]
        offsets = await consumer.end_offsets(tps) if tps else {}
        return sum(offsets.values())
    finally:
        await consumer.stop()


@dataclass
class OutputCounter:
    """Counts the records arriving on one topic and when the first and the last came.

    The rate between the first and the ``expected``-th record excludes every start-up
    cost (group join, recovery) of the process under test.
    """

    bootstrap: str
    topic: str
    expected: int
    count: int = 0
    first_batch: int = 0
    first_at: float | None = None
    last_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            metadata_max_age_ms=500,
        )
        await consumer.start()
        try:
            while self.count < self.expected:
                batches = await consumer.getmany(timeout_ms=200)
                received = sum(len(records) for records in batches.values())
                if received:
                    now = time.perf_counter()
                    if self.first_at is None:
                        self.first_at = now
                        self.first_batch = received
                    self.count += received
                    self.last_at = now
        finally:
            await consumer.stop()
            self.done.set()

    @property
    def rate(self) -> float | None:
        """Records per second after the first batch, up to the last arrival."""
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return None
        return (self.count - self.first_batch) / (self.last_at - self.first_at)


CLOSED_COVERAGE_YAML = """\
teams:
  bench-closed:
    name: Benchmark (always closed)
    timezone: Europe/Rome
    locale: it
    accounts: [{accounts}]
"""


def write_closed_coverage(directory: Path, accounts: list[str]) -> Path:
    """A coverage file in ``directory``: one always-closed team answering ``accounts``."""
    path = directory / "coverage.yaml"
    path.write_text(CLOSED_COVERAGE_YAML.format(accounts=", ".join(accounts)))
    return path


async def stop_child(process: asyncio.subprocess.Process) -> None:
    """Stop a bench child as an operator would: SIGTERM, and SIGKILL after 40 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 40)
        except TimeoutError:
            process.kill()
            await process.wait()
