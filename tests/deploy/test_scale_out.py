"""Scale-out on both brokers (issues 8 and 17): one worker, then three, one SIGKILLed, restarted.

Events are sent in four phases, one per group shape: one worker; three workers (two
added, a rebalance); two workers (one SIGKILLed, a failover); three again (the victim
restarted, a rebalance). Conversations span phases, so a later message is decided
right only if the conversation table moved with its partition: a second customer
message within the cooldown must be ``ack_suppressed: duplicate``, one after a staff
reply ``agent_active``. Everything is checked from the decisions and acks topics:
every event decided, redeliveries identical, one acknowledgment per acknowledged
event and none for the others. Each rebalance is timed from the moment the broker's
group changed (a member joined, or the dead one expired) to the moment the workers'
``ASSIGNED`` lines split the partitions again, and printed (``pytest -s`` shows it).

Pending escalations cross the same moves. Phase 1 also pages on-call with urgent
messages (cohort E) that nobody claims, so each leaves a row in the ``escalations``
table. The coverage gives the closed mode a long chain (:data:`CHAIN` walked
:data:`REPEAT` times) and the events are in the past, so every step is due at once and
the sweep (every :data:`SWEEP_INTERVAL` s on each worker, over the partitions it holds)
sends one step per row per pass: the chains run through the scale-up, the SIGKILL and
the restart. At the end the routes topic must hold, for each paged message, every step
id ``esc:<event_id>:0`` to ``:<steps - 1>`` with the link the chain gives it, first
seen in step order, and no other. A step id may repeat only on the partitions the
SIGKILL orphaned: the victim may have sent a step and died before its table write
reached the changelog, so the new owner sends it again (the delivery ledger, keyed by
step id, sends it once); so the distinct set is compared, and repeats elsewhere fail.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml

from records.headers import HEADER_SOURCE, header_value, parse_position
from streams.settings import Settings
from tests.conftest import EXAMPLE_COVERAGE, settings_for
from tests.support.scale import GroupWatch, TimedWorker
from tests.support.workers import TopicReader, produce

pytestmark = [pytest.mark.broker, pytest.mark.timeout(240)]

Outcome = Literal["ack", "duplicate", "agent_active", "ignore"]

ROME = ZoneInfo("Europe/Rome")


def last_sunday_morning(now: datetime | None = None) -> datetime:
    """08:00 in Rome on the latest Sunday at least a day before ``now`` (default: the real now).

    Sunday: care-it is closed all day, so every first customer message is acknowledged.
    Relative to now, not a fixed date, because the workers are other processes on the
    real clock: the morning's events (08:00 to 11:00) and every escalation step they
    start (3 h of steps) are past, so all are due at once, and the conversations are at
    most 8 days old, inside the retention (14 days), so no sweep expires them before
    their chains are walked. A fixed date passes only until it ages out of the retention.
    """
    day = (now or datetime.now(ROME)).astimezone(ROME).date() - timedelta(days=1)
    day -= timedelta(days=(day.weekday() - 6) % 7)  # back to Sunday (weekday 6)
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=ROME)


SUNDAY_MORNING = last_sunday_morning()
ACCOUNT = "acme.it.facebook"
PER_COHORT = 24
# The default: the failover time the deployment README quotes is measured with it.
SESSION_TIMEOUT = 10.0
DECIDE_WITHIN = 90.0
SETTLE_WITHIN = 90.0
URGENT_TEXT = "il servizio non funziona da stamattina"
# The closed-mode chain of the test coverage: 18 steps, one per sweep per row, so the
# chains outlast the moves (at least 18 x SWEEP_INTERVAL s, plus the pauses of rebalances).
CHAIN = ["next_on_call", "lead:luca", "lead:marta"]
REPEAT = 6
STEPS = len(CHAIN) * REPEAT
SWEEP_INTERVAL = 2.0
ESCALATED_WITHIN = 120.0


@dataclass(frozen=True)
class Sent:
    """One event of the test and the outcome its conversation's history calls for."""

    key: bytes
    value: bytes
    event_id: str
    conversation: str
    expected: Outcome


def coverage_with_chain(path: Path) -> Path:
    """The example coverage, with care-it's closed-mode escalation chain set to :data:`CHAIN`."""
    document = yaml.safe_load(EXAMPLE_COVERAGE.read_text())
    document["teams"]["care-it"]["escalation"] = {"closed": {"after": "10m", "chain": CHAIN, "repeat": REPEAT}}
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def message(conversation: str, n: int, at: datetime, kind: str, expected: Outcome, text: str = "il mio ordine non è ancora arrivato") -> Sent:
    event_id = f"{conversation}-m{n}"
    author = {"id": "staff-marta", "name": "Marta"} if kind == "agent_reply" else {"id": f"u-{conversation}", "name": "Ana"}
    event = {
        "id": event_id,
        "account": ACCOUNT,
        "channel": "facebook",
        "kind": kind,
        "conversation": conversation,
        "author": author,
        "text": text,
        "lang": "it",
        "at": at.isoformat(),
        "in_reply_to": None,
    }
    return Sent(conversation.encode(), orjson.dumps(event), event_id, conversation, expected)


def phases(run: str) -> list[list[Sent]]:
    """The events of the four phases; event times all fall in one closed Sunday morning.

    - cohort A: first message in phase 1 (acknowledged), then one more in each later
      phase, all within the 12 h cooldown (``duplicate``): its state moves three times.
    - cohort B: first message and a staff reply in phase 2, a customer message 5 min
      after the reply in phase 3 (``agent_active``): the staff reply crossed the failover.
    - cohort C: first message in phase 3, another in phase 4 (``duplicate``).
    - cohort D: first message in phase 4.
    - cohort E: an urgent first message in phase 1 (acknowledged and paged to on-call,
      never claimed): its pending escalation runs through every move.
    """
    t = SUNDAY_MORNING
    a = [f"{run}-a{i}" for i in range(PER_COHORT)]
    b = [f"{run}-b{i}" for i in range(PER_COHORT)]
    c = [f"{run}-c{i}" for i in range(PER_COHORT)]
    d = [f"{run}-d{i}" for i in range(PER_COHORT)]
    e = [f"{run}-e{i}" for i in range(PER_COHORT // 2)]
    hour = timedelta(hours=1)
    return [
        [message(x, 1, t, "dm", "ack") for x in a] + [message(x, 1, t, "dm", "ack", URGENT_TEXT) for x in e],
        [message(x, 2, t + hour, "dm", "duplicate") for x in a]
        + [message(x, 1, t + hour, "dm", "ack") for x in b]
        + [message(x, 2, t + 1.5 * hour, "agent_reply", "ignore") for x in b],
        [message(x, 3, t + 2 * hour, "dm", "duplicate") for x in a]
        + [message(x, 3, t + 1.5 * hour + timedelta(minutes=5), "dm", "agent_active") for x in b]
        + [message(x, 1, t + 2 * hour, "dm", "ack") for x in c],
        [message(x, 4, t + 3 * hour, "dm", "duplicate") for x in a]
        + [message(x, 2, t + 3 * hour, "dm", "duplicate") for x in c]
        + [message(x, 1, t + 3 * hour, "dm", "ack") for x in d],
    ]


def outcome(decision: dict[str, object]) -> str:
    """What the decision did about the acknowledgment, in the words of :data:`Outcome`."""
    if decision["action"] == "ignore":
        return "ignore"
    if decision["ack_suppressed"]:
        return str(decision["ack_suppressed"])
    return "ack" if decision["ack"] else "none"


async def send_and_wait(settings: Settings, batch: list[Sent], decisions: TopicReader, seen: dict[str, list[bytes]]) -> None:
    """Produce ``batch`` and poll the decisions topic until each of its events has one."""
    await produce(settings, [(s.key, s.value) for s in batch])
    wanted = {s.event_id for s in batch}
    deadline = time.monotonic() + DECIDE_WITHIN
    while not wanted <= seen.keys() and time.monotonic() < deadline:
        for record in await decisions.poll():
            seen[orjson.loads(record.value)["event_id"]].append(record.value)
    missing = wanted - seen.keys()
    assert set() == missing, f"{len(missing)} events not decided in {DECIDE_WITHIN:.0f} s, e.g. {sorted(missing)[:5]}"


async def settled(workers: list[TimedWorker], watch: GroupWatch, partitions: int, trigger: float | None) -> float:
    """Wait until ``workers`` split the partitions exactly; return when the last of them got its share.

    The broker's group must be stable with exactly these workers as members, and each
    worker must have printed ``ASSIGNED`` since the group changed after ``trigger``, so
    a stale line of an earlier generation is not taken for the end (``trigger`` None:
    no change awaited, the group as it is). A worker may hold
    nothing: Faust's assignor is sticky and can leave a rejoining worker idle.
    """
    deadline = time.monotonic() + SETTLE_WITHIN
    while time.monotonic() < deadline:
        held = sorted(p for w in workers for p in w.partitions)
        group = watch.samples[-1]
        changed = 0.0 if trigger is None else watch.changed_after(trigger)
        if (
            held == list(range(partitions))
            and changed is not None
            and all(w.assigned_at >= changed for w in workers)
            and group.state == "Stable"
            and len(group.members) == len(workers)
        ):
            return max(w.assigned_at for w in workers)
        # The thing waited for is a line on other processes' stdout, read by threads:
        # it has no awaitable, so re-check at the group watch's pace.
        await asyncio.sleep(watch.interval)
    logs = "\n".join(w.log() for w in workers)
    shape = [(w.index, w.ready.is_set(), sorted(w.partitions)) for w in workers]
    group = watch.samples[-1]
    raise AssertionError(
        f"assignment never settled: (worker, ready, partitions) {shape}; group {group.state} "
        f"with {len(group.members)} members\n{logs}"
    )


async def await_escalations(routes: TopicReader, wanted: set[str]) -> None:
    """Poll the routes topic until every step id in ``wanted`` is on it."""
    seen: set[str] = set()
    deadline = time.monotonic() + ESCALATED_WITHIN
    while not wanted <= seen and time.monotonic() < deadline:
        seen |= {orjson.loads(record.value)["route_id"] for record in await routes.poll()}
    missing = wanted - seen
    assert set() == missing, f"{len(missing)} escalation steps not sent in {ESCALATED_WITHIN:.0f} s, e.g. {sorted(missing)[:5]}"


def rebalance_time(watch: GroupWatch, trigger: float, settled_at: float, what: str) -> float:
    """Seconds from the group's first change after ``trigger`` to ``settled_at``."""
    changed = watch.changed_after(trigger)
    assert changed is not None, f"{what}: the broker never showed the group change"
    return settled_at - changed


class TestScaleOut:
    async def test_state_follows_partitions_through_scale_up_kill_and_restart(self, any_broker, tmp_path: Path) -> None:
        """One worker, then three, one SIGKILLed and restarted, on Tansu and on Apache Kafka:
        every event decided once in effect, state and pending escalations carried."""
        run = f"scale-{time.time_ns() % 10**8}"
        settings = settings_for(
            any_broker, run, tmp_path / "data", session_timeout=SESSION_TIMEOUT, reconcile_interval=2.0,
            sweep_interval=SWEEP_INTERVAL, coverage_file=coverage_with_chain(tmp_path / "coverage.yaml"),
        )
        batches = phases(run)
        everything = [s for batch in batches for s in batch]
        paged = [s for s in batches[0] if URGENT_TEXT in orjson.loads(s.value)["text"]]
        steps = {f"esc:{s.event_id}:{n}": (s, n) for s in paged for n in range(STEPS)}
        seen: dict[str, list[bytes]] = defaultdict(list)
        timings: dict[str, float] = {}
        escalated_at: float | None = None
        workers = [TimedWorker.spawn(0, settings, tmp_path)]
        restarted_logs = tmp_path / "restarted"
        restarted_logs.mkdir()
        try:
            await workers[0].wait_ready(60)
            async with GroupWatch(settings) as watch, TopicReader(settings, settings.decisions_topic) as decisions:
                await settled(workers, watch, settings.partitions, None)
                await send_and_wait(settings, batches[0], decisions, seen)
                first_sent_at = time.monotonic()

                added_at = time.monotonic()
                workers += [TimedWorker.spawn(i, settings, tmp_path) for i in (1, 2)]
                settled_at = await settled(workers, watch, settings.partitions, added_at)
                timings["scale-up 1 -> 3 workers"] = rebalance_time(watch, added_at, settled_at, "scale-up")
                await send_and_wait(settings, batches[1], decisions, seen)

                # The victim holds the most partitions: the most conversation state moves.
                victim = max(workers, key=lambda w: len(w.partitions))
                orphaned = victim.partitions
                killed_at, killed_wall = time.monotonic(), time.time()
                victim.kill()
                workers.remove(victim)
                # Phase 3 is produced at once: the orphaned partitions' events wait for the takeover.
                await produce(settings, [(s.key, s.value) for s in batches[2]])
                settled_at = await settled(workers, watch, settings.partitions, killed_at)
                timings["SIGKILL: expiry -> 2 workers"] = rebalance_time(watch, killed_at, settled_at, "failover")
                timings["SIGKILL: failover (kill -> 2 workers)"] = settled_at - killed_at
                await send_and_wait(settings, batches[2], decisions, seen)

                restarted_at = time.monotonic()
                workers.append(TimedWorker.spawn(victim.index, settings, restarted_logs))
                settled_at = await settled(workers, watch, settings.partitions, restarted_at)
                timings["restart 2 -> 3 workers"] = rebalance_time(watch, restarted_at, settled_at, "restart")
                await send_and_wait(settings, batches[3], decisions, seen)

                records = await decisions.read_all()
            async with TopicReader(settings, settings.acks_topic) as acks:
                ack_records = await acks.read_all()
            async with TopicReader(settings, settings.routes_topic) as routes:
                await await_escalations(routes, set(steps))
                escalated_at = time.monotonic()
                route_records = await routes.read_all()
        finally:
            for worker in workers:
                worker.stop()
            for what, seconds in timings.items():
                print(f"rebalance {what}: {seconds:.2f} s (session timeout {SESSION_TIMEOUT:.0f} s)")
            if escalated_at is not None:
                print(
                    f"escalations: {len(paged)} chains of {STEPS} steps (sweep every {SWEEP_INTERVAL:.0f} s) "
                    f"done {escalated_at - first_sent_at:.1f} s after phase 1 was decided"
                )

        copies: dict[str, set[bytes]] = defaultdict(set)
        partition_of: dict[str, int] = {}
        for record in records:
            event_id = orjson.loads(record.value)["event_id"]
            copies[event_id].add(record.value)
            source = parse_position(header_value(record.headers, HEADER_SOURCE))
            if source is not None:
                partition_of[event_id] = source[0]
        assert {s.event_id for s in everything} == set(copies)
        assert {} == {e: len(v) for e, v in copies.items() if len(v) > 1}, "redeliveries decided differently"

        expected = {s.event_id: s.expected for s in everything}
        actual = {e: outcome(orjson.loads(next(iter(v)))) for e, v in copies.items()}
        assert expected == actual

        ack_values: dict[str, set[bytes]] = defaultdict(set)
        ack_ids_per_event: dict[str, set[str]] = defaultdict(set)
        for record in ack_records:
            ack = orjson.loads(record.value)
            ack_values[ack["ack_id"]].add(record.value)
            ack_ids_per_event[ack["event_id"]].add(ack["ack_id"])
        assert {} == {a: len(v) for a, v in ack_values.items() if len(v) > 1}, "acks differ between redeliveries"
        assert {e: {f"ack:{e}"} for e, o in expected.items() if o == "ack"} == dict(ack_ids_per_event)

        # Not vacuous: conversations acknowledged before any move lived on the partitions
        # the SIGKILL orphaned, and still got "duplicate" after the failover.
        moved = {s.conversation for s in batches[0] if partition_of.get(s.event_id) in orphaned}
        assert moved, f"no phase-1 conversation on the victim's partitions {sorted(orphaned)}"

        # Pending escalations: every step of every chain, with its link, in step order;
        # repeats only where the SIGKILL can explain them (see the module docstring).
        assert {s.event_id: "page" for s in paged} == {
            s.event_id: orjson.loads(next(iter(copies[s.event_id])))["action"] for s in paged
        }
        sent = [(orjson.loads(r.value), r.timestamp / 1000) for r in route_records]
        escalations = [(route, at) for route, at in sent if route["route_id"].startswith("esc:")]
        assert set(steps) == {route["route_id"] for route, _ in escalations}
        assert {step_id: CHAIN[n % len(CHAIN)] for step_id, (_, n) in steps.items()} == {
            route["route_id"]: route["extra"]["escalation"]["link"] for route, _ in escalations
        }
        first_seen: dict[str, list[int]] = defaultdict(list)
        copies_of_step: dict[str, int] = defaultdict(int)
        for route, _ in escalations:
            copies_of_step[route["route_id"]] += 1
            if copies_of_step[route["route_id"]] == 1:
                first_seen[route["event_id"]].append(steps[route["route_id"]][1])
        assert {s.event_id: list(range(STEPS)) for s in paged} == dict(first_seen)
        repeated = {step_id for step_id, n in copies_of_step.items() if n > 1}
        orphaned_steps = {
            step_id for step_id, (s, _) in steps.items()
            if partition_of.get(s.event_id) in orphaned
        }
        assert set() == repeated - orphaned_steps, "escalation steps repeated on partitions the SIGKILL did not touch"

        # Not vacuous: some chain on the victim's partitions had steps sent before the
        # SIGKILL and the rest after the failover, so its row moved mid-chain.
        times: dict[str, list[float]] = defaultdict(list)
        for route, at in escalations:
            times[route["event_id"]].append(at)
        crossed = [
            s.event_id for s in paged
            if partition_of.get(s.event_id) in orphaned
            and min(times[s.event_id]) < killed_wall < max(times[s.event_id])
        ]
        print(f"escalations: {len(crossed)} chains crossed the SIGKILL; {len(repeated)} steps repeated after it")
        assert crossed, f"no escalation chain on the victim's partitions {sorted(orphaned)} ran across the SIGKILL"
