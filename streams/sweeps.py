"""The workers' periodic sweeps: the ticks they post and the handover digest they send.

Every sweep looks at the conversations of the partitions this worker holds that its
due-time index (:mod:`streams.due_index`, :func:`indexed_due`) says are due or changed
since the last sweep, not at every row, and posts, for each promise due, a tick
(:mod:`records.actions`) to the actions topic, keyed by the conversation; the actions agent, which owns the partition, applies it
(:func:`streams.app.apply_action`). What is due and what a tick does are pure rules in
:mod:`promises.ticks`; the routes they send are :mod:`promises.routes`. This module
only gathers the rules' input from the worker's tables and sends what they return.

Escalation (an unclaimed route's chain). A routed or paged message that waits for a
claim is one row of the ``escalations`` table (key: the conversation, so the row lives
on the partition of the conversation's events and actions; value:
:class:`~promises.rules.PendingEscalation` bytes of the latest route of that
conversation). :func:`sweep_promises` sends an *escalation tick*
(:func:`~promises.ticks.escalation_tick`) for each row whose next step is due; the
actions agent asks :func:`~promises.ticks.escalation_on_tick` what it does, sends the
step to the routes outbox and records it as sent. So every read and write of a row
happens inside the agent that owns its partition (Faust's stores write only from a
stream event), a claim and an escalation of one conversation are applied in order, and
a tick that is swept twice, or redelivered, finds the step already sent and does
nothing. A crash between the route and the table write makes the tick apply again with
the same ``route_id`` (``esc:<event_id>:<n>``), which the delivery ledger sends once.
A pending escalation whose conversation got a staff reply (an ``agent_reply``, e.g. from
a care desk) at or after the message it escalates gets no tick
(:func:`replied_since_routed`): someone has it.

Follow-through and reply windows. The same sweep reads the ``conversations`` rows of
the held partitions (:func:`sweep_promises`, :func:`promise_ticks`): a promised reply-by
time passed without a staff reply, or a claim unanswered past the team's
``claim_limit``, is a ``remind`` tick; a waiting Facebook/Instagram/WhatsApp
conversation whose reply window closes before the team opens is a ``window`` tick. The
actions agent applies them against the state of that moment and records what it sent
on the conversation.

Hold mode. The same sweep releases a held Chatwoot inbox's new ``pending`` conversation
while its team is open (:func:`releases`, :func:`promises.routes.release_route`): a
desk-only route, sent once per message and worker (the ledger makes a repeat free).

Retention. The same sweep finds the conversations, pending escalations and delivery
ledger entries older than ``settings.retention`` and posts ``expire`` and
``expire_ledger`` ticks; the actions agent deletes them (:mod:`streams.retention`).

The due-time index. :func:`keep_due_index` (called by :func:`streams.app.create_app`)
marks a conversation for the next sweep at each write or delete of its rows and each
changelog record applied to an indexed partition, drops the partitions a rebalance revokes, builds those a
recovery completes (and the sweep builds any held partition not yet indexed,
:func:`sync_partitions`), and marks everything on a coverage swap. The sweep asks the
rules below about the conversations it pops exactly as the full scan did
(:func:`scanned_due`, kept as the reference the index is tested against), puts each
back with its next instant, and asks the timers to wake at the earliest
(:func:`plan_wake`, :meth:`streams.timers.PromiseTimers.wake_at`). The delivery ledger
is still read whole, at most once per ``settings.sweep_interval``.

Handover. At each opening (:class:`~streams.timers.PromiseTimers`) each worker sends
the digest of the backlog held in *its own* partitions of the ``conversations`` table
(:func:`hand_over`): one route per team, opening and worker partitions, with the
deterministic id ``handover:<team>:<opening>:p<partitions>``. With several workers the
team gets one digest per worker that holds part of its backlog. The backlog's care-desk
conversations carry their ``desk`` block, and the responders assign them in the desk in
the digest's order (:func:`promises.routes.handover_assignments`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from brokers.client import partition_of
from promises.routes import digest_route, release_due, release_route
from promises.rules import BacklogItem, PendingEscalation, handover_digest
from promises.ticks import due_ticks, reminders_due, utc_instant, window_route_due
from records.actions import EscalationTick, ReminderTick, WindowTick
from records.wire import RouteRequest
from schedules import Team
from streams.due_index import DueIndex, conversation_instants
from streams.retention import (
    expired_conversations,
    first_sight_of,
    send_expiries,
    sweep_ledger,
)
from triage.state import ConversationState

if TYPE_CHECKING:
    from streams.app import OffhoursApp

log = logging.getLogger(__name__)

def held_rows(rows: Iterable[tuple[bytes, bytes]], held: Collection[int], partitions: int) -> Iterator[tuple[bytes, bytes]]:
    """The table rows whose key belongs to a partition in ``held``.

    A worker's in-memory store may still carry rows of partitions a rebalance took away;
    only the holder of a partition acts on its rows.
    """
    for key, value in rows:
        if value is not None and partition_of(key, partitions) in held:
            yield key, value


def backlog_of(rows: Iterable[tuple[bytes, bytes]], team: Team, opening_at: datetime) -> list[BacklogItem]:
    """The off-hours backlog of ``team`` at ``opening_at`` among ``rows`` of the conversations table.

    A conversation is in the backlog when it is open (not marked answered), its last
    customer message came before the opening while the team was not open, and no staff
    reply came after that message.
    """
    items: list[BacklogItem] = []
    for key, value in rows:
        state = ConversationState.from_bytes(value)
        if state.team != team.id or state.status != "open" or state.customer_at is None:
            continue
        if state.staff_at is not None and state.staff_at >= state.customer_at:
            continue
        last_message = datetime.fromtimestamp(state.customer_at, UTC)
        if last_message >= opening_at or team.at(last_message).mode == "open":
            continue
        first_waiting = state.waiting_since if state.waiting_since is not None else state.customer_at
        reply_by, promised = state.promise()
        items.append(
            BacklogItem(
                conversation=key.decode("utf-8", "replace"),
                channel=state.channel or "generic",
                waiting_since=datetime.fromtimestamp(min(first_waiting, state.customer_at), UTC),
                urgent=state.urgent,
                ack_text=promised,
                reply_by=utc_instant(reply_by),
                kind=state.kind,
                account=state.account,
                author_name=state.author_name,
                text=state.text,
                desk=state.desk,
            )
        )
    return items


def handover_route(rows: Iterable[tuple[bytes, bytes]], team: Team, opening_at: datetime, held: Collection[int]) -> RouteRequest | None:
    """The handover route of ``team`` at ``opening_at`` for ``rows``, or None when nothing waits."""
    backlog = backlog_of(rows, team, opening_at)
    if not backlog:
        return None
    return digest_route(handover_digest(team, backlog, opening_at), team, held)


def held_partitions(app: OffhoursApp) -> set[int]:
    """The partitions of the events topic (and so of the tables) this worker holds now."""
    topic = app.settings.events_topic
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


def replied_since_routed(
    escalations: Iterable[tuple[bytes, bytes]], conversations: Iterable[tuple[bytes, ConversationState]]
) -> set[bytes]:
    """The keys of the pending escalations whose conversation got a staff reply at or after
    the message they escalate (its ``routed_at``): they need no further step."""
    staff_at = {key: state.staff_at for key, state in conversations if state.staff_at is not None}
    return {key for key, value in escalations if key in staff_at and PendingEscalation.from_bytes(value).replied(staff_at[key])}


async def _send_ticks(app: OffhoursApp, ticks: Sequence[tuple[bytes, EscalationTick | ReminderTick | WindowTick]]) -> int:
    for key, tick in ticks:
        await app.stream_topics.actions.send(key=key, value=tick.to_json())
    return len(ticks)


async def hand_over(app: OffhoursApp, team: Team, opening_at: datetime) -> RouteRequest | None:
    """Send ``team``'s handover digest of this worker's partitions at ``opening_at``; returns it.

    Nothing is sent when no conversation of the team waits in these partitions.
    """
    held = held_partitions(app)
    rows = held_rows(list(app.conversations.items()), held, app.settings.partitions)
    route = handover_route(rows, team, opening_at, held)
    if route is not None:
        await app.stream_topics.routes.send(key=f"handover:{team.id}".encode(), value=route.to_json())
        if app.metrics is not None:
            app.metrics.handovers.labels(team=team.id).inc()
        log.info("handover %s sent (%d waiting)", route.route_id, len(route.handover or ()))
    return route


# -- follow-through and reply windows -------------------------------------------------


def promise_ticks(
    rows: Iterable[tuple[bytes, bytes | ConversationState]], teams: dict[str, Team], now: datetime
) -> list[tuple[bytes, ReminderTick | WindowTick]]:
    """The follow-through and reply-window ticks due at ``now`` for ``rows`` of the conversations table
    (values as stored, or already decoded)."""
    ticks: list[tuple[bytes, ReminderTick | WindowTick]] = []
    for key, value in rows:
        state = value if isinstance(value, ConversationState) else ConversationState.from_bytes(value)
        team = teams.get(state.team)
        if team is None or state.status != "open":
            continue
        conversation = key.decode("utf-8", "replace")
        for reminder in reminders_due(conversation, state, team, now):
            ticks.append((key, ReminderTick(conversation=conversation, reminder_id=reminder.id, at=now)))
        if state.customer_at is not None and window_route_due(state, team, now):
            ticks.append((key, WindowTick(conversation=conversation, customer_at=state.customer_at, at=now)))
    return ticks


def releases(
    rows: Iterable[tuple[bytes, ConversationState]], teams: dict[str, Team], now: datetime
) -> list[tuple[bytes, RouteRequest]]:
    """The release routes due at ``now`` for ``rows`` of the conversations table (decoded)."""
    due: list[tuple[bytes, RouteRequest]] = []
    for key, state in rows:
        team = teams.get(state.team)
        if team is not None and release_due(state, team, now):
            due.append((key, release_route(state, team, key.decode("utf-8", "replace"), now)))
    return due


SWEEP_CHUNK = 2_000
"""The most conversations a sweep looks at between two returns to the event loop."""

RELEASES_KEPT = 10_000
"""How many release ids a worker remembers having sent (then it forgets them all; the ledger still sends each once)."""


async def _send_releases(app: OffhoursApp, due: list[tuple[bytes, RouteRequest]]) -> int:
    """Send each release route once per worker: a released conversation's state still says
    ``pending`` until its customer writes again, so the next sweeps find it due again."""
    sent: set[str] = app.__dict__.setdefault("_released_ids", set())
    if len(sent) > RELEASES_KEPT:
        sent.clear()
    count = 0
    for key, route in due:
        if route.route_id in sent:
            continue
        await app.stream_topics.routes.send(key=key, value=route.to_json())
        sent.add(route.route_id)
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class DueWork:
    """What one sweep sends: escalation ticks, reminder and window ticks, releases, expiries."""

    escalations: list[tuple[bytes, EscalationTick]]
    promises: list[tuple[bytes, ReminderTick | WindowTick]]
    releases: list[tuple[bytes, RouteRequest]]
    expiring: list[tuple[bytes, int | None]]
    looked: int = 0
    """How many conversations the sweep looked at (the index's; 0 from a full scan)."""


def due_work(
    app: OffhoursApp,
    conversations: list[tuple[bytes, ConversationState]],
    escalations: list[tuple[bytes, bytes]],
    now: datetime,
    partial: bool = False,
) -> DueWork:
    """What is due at ``now`` among these rows of the two tables (``partial``: only the rows
    the due-time index gave the sweep, not every held row).

    A conversation older than ``settings.retention`` gets an ``expire`` tick and no
    other; a pending escalation whose conversation got a staff reply since gets none.
    """
    teams = app.coverage.coverage.teams
    expiring = expired_conversations(app, conversations, escalations, now, partial)
    gone = {key for key, _ in expiring}
    skip = gone | replied_since_routed(escalations, conversations)
    return DueWork(
        escalations=due_ticks([row for row in escalations if row[0] not in skip], teams, now),
        promises=promise_ticks([row for row in conversations if row[0] not in gone], teams, now),
        releases=releases([row for row in conversations if row[0] not in gone], teams, now),
        expiring=expiring,
    )


def scanned_due(app: OffhoursApp, held: Collection[int], now: datetime) -> DueWork:
    """What is due at ``now`` in ``held``, from a scan of every row of the two tables.

    How the sweep worked before the due-time index; kept as the reference the index is
    tested against (it must find exactly this), and for a one-off look at everything.
    """
    partitions = app.settings.partitions
    conversations = [(key, ConversationState.from_bytes(value))
                     for key, value in held_rows(list(app.conversations.items()), held, partitions)]
    escalations = list(held_rows(list(app.escalations.items()), held, partitions))
    return due_work(app, conversations, escalations, now)


# -- the due-time index -----------------------------------------------------------------


def due_index_of(app: OffhoursApp) -> DueIndex:
    """The worker's due-time index (:mod:`streams.due_index`), made on first use."""
    index = app.__dict__.get("due_index")
    if index is None:
        partitions = app.settings.partitions
        index = app.__dict__["due_index"] = DueIndex(lambda key: partition_of(key, partitions))
    return index


def build_partitions(app: OffhoursApp, index: DueIndex, partitions: Collection[int]) -> None:
    """Index ``partitions`` anew from the rows the tables hold of them (a takeover, a recovery)."""
    if not partitions:
        return
    count = app.settings.partitions
    keys: dict[int, set[bytes]] = {partition: set() for partition in partitions}
    for table in (app.conversations, app.escalations):
        for key in list(table.keys()):
            found = keys.get(partition_of(key, count))
            if found is not None:
                found.add(key)
    for partition, found in keys.items():
        index.build(partition, found)
    log.debug("due-time index built for partitions %s", sorted(partitions))


def drop_partitions(app: OffhoursApp, index: DueIndex, partitions: Collection[int]) -> None:
    """Forget ``partitions`` (given away): their index, and when the sweep first saw their rows
    without an instant (a worker that takes them back starts that wait again, as a scan did)."""
    if not partitions:
        return
    index.drop(partitions)
    seen = first_sight_of(app).seen
    count = app.settings.partitions
    for key in [key for key in seen if partition_of(key, count) in partitions]:
        del seen[key]


def sync_partitions(app: OffhoursApp, index: DueIndex, held: Collection[int]) -> None:
    """Drop the partitions no longer held and build those held and not yet indexed."""
    indexed = index.partitions
    drop_partitions(app, index, indexed - set(held))
    build_partitions(app, index, set(held) - indexed)


def indexed_due(
    app: OffhoursApp, held: Collection[int], now: datetime, limit: int | None = None, first: bool = True
) -> DueWork:
    """What is due at ``now`` in ``held``, reading only the conversations the due-time index
    says to look at (due, or changed since the last sweep), at most ``limit`` of them (the
    rest for the next call: ``first=False``, where the keys still due that this sweep put
    back are left for the next sweep); each goes back into the index with its next instant
    (:func:`streams.due_index.conversation_instants`).

    Finds exactly what :func:`scanned_due` finds (tests/unit/streams/test_due_index.py).
    """
    index = due_index_of(app)
    sync_partitions(app, index, held)
    keys = index.pop_due(held, now.timestamp(), limit, again=first)
    states: dict[bytes, ConversationState] = {}
    pending: dict[bytes, bytes] = {}
    for key in keys:
        raw = app.conversations.get(key)
        if raw is not None:
            states[key] = ConversationState.from_bytes(raw)
        row = app.escalations.get(key)
        if row is not None:
            pending[key] = row
    found = due_work(app, list(states.items()), list(pending.items()), now, partial=True)
    work = DueWork(found.escalations, found.promises, found.releases, found.expiring, looked=len(keys))
    teams, retention, first_sight = app.coverage.coverage.teams, app.settings.retention, first_sight_of(app)
    seconds = now.timestamp()
    for key in keys:
        tick, expiry = conversation_instants(key, states.get(key), pending.get(key), teams, retention, now, first_sight)
        if tick is not None and (expiry is None or tick <= expiry):
            index.put(key, tick, seconds)
        else:
            index.put(key, expiry, seconds, wake=False)  # expiries wait for the periodic sweep, batched
    return work


def keep_due_index(app: OffhoursApp) -> DueIndex:
    """Keep ``app``'s due-time index current with its ``conversations`` and ``escalations`` tables.

    Called once by :func:`streams.app.create_app` after it made the tables. Each write
    or delete (the agents) and each changelog record applied to an indexed partition marks
    the key for the next sweep; a rebalance drops the partitions revoked; a finished
    recovery builds the partitions recovered (so a worker that takes partitions over
    sweeps their pending escalations at once); a coverage swap marks every key. The
    sweep itself also builds any held partition not yet indexed and drops the others
    (:func:`sync_partitions`), so a missed hook costs a rebuild, never a promise.

    The hooks wrap the two table objects' own ``on_key_set``, ``on_key_del``,
    ``apply_changelog_batch``, ``on_rebalance`` and ``on_recovery_completed``: Faust
    calls each on the table for every write, delete, recovered batch and rebalance.
    """
    index = due_index_of(app)
    for table in (app.conversations, app.escalations):
        _watch(app, table, index)
    app.coverage.on_swap(lambda _coverage: index.touch_all())
    return index


def _watch(app: OffhoursApp, table: Any, index: DueIndex) -> None:
    on_key_set, on_key_del = table.on_key_set, table.on_key_del
    apply_changelog_batch, on_rebalance = table.apply_changelog_batch, table.on_rebalance
    on_recovery_completed = table.on_recovery_completed
    touch = index.touch

    def key_set(key: Any, value: Any) -> None:
        on_key_set(key, value)
        touch(key)

    def key_del(key: Any) -> None:
        on_key_del(key)
        touch(key)

    def changelog_batch(batch: Iterable[Any]) -> None:
        events = list(batch)
        apply_changelog_batch(events)
        indexed = index.partitions  # a standby's partitions are built when taken over, not kept
        for event in events:
            if event.key is not None and event.message.partition in indexed:
                touch(event.key)

    async def rebalance(assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0) -> None:
        await on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topics = {app.settings.events_topic, table.changelog_topic_name}
        drop_partitions(app, index, {tp.partition for tp in revoked if tp.topic in topics})

    async def recovery_completed(active_tps: Any, standby_tps: Any) -> None:
        await on_recovery_completed(active_tps, standby_tps)
        build_partitions(app, index, {tp.partition for tp in active_tps})

    table.on_key_set, table.on_key_del = key_set, key_del
    table.apply_changelog_batch, table.on_rebalance = changelog_batch, rebalance
    table.on_recovery_completed = recovery_completed


# -- the sweep --------------------------------------------------------------------------


async def sweep_promises(app: OffhoursApp, now: datetime) -> int:
    """Send the escalation, follow-through, reply-window and expiry ticks due at ``now`` in this worker's partitions,
    and the releases of held desk conversations (:func:`releases`).

    Returns how many ticks were sent. Only the conversations the due-time index gives
    are read (:func:`indexed_due`); then the timers are asked to wake at the index's
    next instant when it comes before the next sweep (:func:`plan_wake`). The actions
    agent applies each tick against the conversation's state at that moment
    (:func:`streams.app.apply_action`), so a tick that is stale (a reply came, the
    reminder was sent) does nothing. A conversation older than ``settings.retention``
    gets an ``expire`` tick and no other, and the ledger entries of the held partitions
    older than it ``expire_ledger`` ticks (:mod:`streams.retention`; the ledger is read
    at most once per ``settings.sweep_interval``, however often the timers wake).
    """
    held = held_partitions(app)
    if not held:
        return 0
    count = 0
    expiring: list[tuple[bytes, int | None]] = []
    first = True
    while True:
        work = indexed_due(app, held, now, SWEEP_CHUNK, first)
        first = False
        count += await _send_ticks(app, work.escalations)
        count += await _send_ticks(app, work.promises)
        count += await _send_releases(app, work.releases)
        expiring.extend(work.expiring)
        if work.looked < SWEEP_CHUNK:
            break
        await asyncio.sleep(0)  # a takeover's first sweep looks at every conversation: let the loop breathe
    count += await send_expiries(app, expiring, now)
    plan_wake(app, held)
    last = app.__dict__.get("_ledger_swept_at")
    # Half an interval: a periodic sweep a little early on the clock still reads the ledger.
    if last is None or (now - last).total_seconds() >= app.settings.sweep_interval / 2 or now < last:
        app.__dict__["_ledger_swept_at"] = now
        count += await sweep_ledger(app, now, held)
    return count


def plan_wake(app: OffhoursApp, held: Collection[int]) -> None:
    """Ask the promise timers to sweep again at the due-time index's next instant
    (:meth:`streams.timers.PromiseTimers.wake_at`), so an escalation or reminder goes
    out when due, not up to one sweep interval later."""
    timers = getattr(app, "promise_timers", None)
    at = due_index_of(app).next_due(held)
    if timers is not None and at is not None:
        timers.wake_at(utc_seconds(at))


def utc_seconds(seconds: float) -> datetime:
    """POSIX seconds as an aware UTC instant (the index keeps seconds; -inf: the epoch)."""
    return datetime.fromtimestamp(max(seconds, 0.0), UTC)
