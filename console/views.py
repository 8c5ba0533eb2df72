"""The console's pages as plain data, pure: coverage, a clock's instant and the projection in.

Every coverage figure is the engine's own answer (:meth:`schedules.Team.at`,
:meth:`~schedules.Team.pieces`, :meth:`~schedules.Team.on_call_shifts`,
:func:`schedules.gaps.team_gaps`: what ``offhours coverage at`` and ``coverage ics``
print), never a second computation; every decision is :meth:`triage.policy.Triage.decide`,
the worker's; escalation and handover order are :mod:`promises.rules`. The templates
only lay the data out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from console.projection import Answer, Projection
from promises.routes import pending_from_route
from promises.rules import (
    MIN_SAMPLES,
    BacklogItem,
    FirstResponseStats,
    early_route_at,
    escalation_due,
    handover_digest,
    promised_reply_within,
    reply_mechanism,
)
from promises.sla import sla_rows
from records.platforms import window_closes
from schedules import Coverage, Team, WallTime
from schedules.gaps import team_gaps
from triage.policy import Triage

MODES = ("open", "reduced", "closed")
DEFAULT_REPLY = timedelta(hours=2)
GAP_DAYS = 7
SHIFT_LOOKAHEAD = timedelta(days=60)
QUEUE_LIMIT = 100
BACKLOG_PREVIEW = 10
"""Backlog rows per team on the all-teams queue (each team's own queue lists up to :data:`QUEUE_LIMIT`)."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Timeline geometry (SVG user units): one row per local day, lanes stacked inside it.
LABEL_WIDTH = 118
HOUR_WIDTH = 30
LANES: tuple[tuple[str, str, int], ...] = (
    ("hours", "weekly hours", 7),
    ("holidays", "holidays", 7),
    ("overrides", "overrides", 7),
    ("on_call", "on call", 10),
    ("effective", "effective", 16),
)
LANE_GAP = 2
ROW_PADDING = 10
AXIS_HEIGHT = 20


def local_midnight(team: Team, day: date) -> datetime:
    """00:00 of ``day`` in the team's zone, by the coverage file's daylight-saving rule."""
    return WallTime(datetime.combine(day, time())).to_instant(team.timezone).astimezone(team.timezone)


def iso(instant: datetime | None) -> str | None:
    """ISO 8601 to the second, with the offset the instant carries (as ``coverage at`` prints)."""
    return None if instant is None else instant.isoformat(timespec="seconds")


def moment(instant: datetime | None, team: Team | None = None) -> str:
    """``Mon 23 Nov 09:00`` in the team's zone (the instant's own without a team)."""
    if instant is None:
        return "—"
    local = instant.astimezone(team.timezone) if team is not None else instant
    return local.strftime("%a %d %b %H:%M")


def between(start: datetime, end: datetime) -> timedelta:
    """Real elapsed time from ``start`` to ``end`` (Python subtracts wall clocks within one zone)."""
    return timedelta(seconds=end.timestamp() - start.timestamp())


def duration(delta: timedelta | None) -> str:
    """``13 h 12 min``, ``2 d 4 h``, ``45 min``, ``30 s``; ``—`` for None; negative reads ``-…``."""
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{seconds} s"


# -- now ------------------------------------------------------------------------------

_TRANSITION = {"open": "opens", "reduced": "reduced hours from", "closed": "closes"}


@dataclass(frozen=True, slots=True)
class Promise:
    """The reply time promised now for a team and mode, and where it comes from."""

    within: timedelta
    reply_by: datetime | None
    source: str


def promise_now(team: Team, at: datetime, stats: FirstResponseStats) -> Promise:
    """What an acknowledgment of a message at ``at`` promises, by :func:`promises.rules.promised_reply_within`.

    Closed: a reply within the open-hours time from the next opening, as the policy writes it.
    """
    coverage_at = team.at(at)
    mode = coverage_at.mode
    if mode == "closed":
        configured = team.triage.reply_within.get("open", DEFAULT_REPLY)
        if coverage_at.next_open is None:
            return Promise(configured, None, "configured (no opening within 400 days)")
        opening = team.at(coverage_at.next_open)
        within = promised_reply_within(stats, team, "open", opening, configured)
        return Promise(within, coverage_at.next_open + within, _source(team, "open", stats, configured, within) + ", from the next opening")
    configured = team.triage.reply_within.get(mode, DEFAULT_REPLY)
    within = promised_reply_within(stats, team, mode, coverage_at, configured)
    return Promise(within, at + within, _source(team, mode, stats, configured, within))


def _source(team: Team, mode: str, stats: FirstResponseStats, configured: timedelta, within: timedelta) -> str:
    samples = len(stats.durations(team.id, mode))
    target = team.escalation.target_for(mode)
    if samples >= MIN_SAMPLES:
        text = f"measured median of {samples} first responses"
    else:
        text = f"configured triage.reply_within.{mode} ({samples} of {MIN_SAMPLES} responses measured)"
    if target is not None and within == target and (samples >= MIN_SAMPLES or configured > target):
        text += f", capped by the {mode} target"
    return text


def now_panel(coverage: Coverage, now: datetime, stats: FirstResponseStats) -> list[dict[str, Any]]:
    """Per team: mode, since/until, who is on call until when, next transition, promise, gaps."""
    teams = []
    for team in coverage.teams.values():
        at = team.at(now)
        local_now = now.astimezone(team.timezone)
        transition = None
        if at.until is not None:
            next_mode = team.at(at.until).mode
            transition = {
                "mode": next_mode,
                "text": f"{_TRANSITION[next_mode]} {at.until.strftime('%a %H:%M')} {team.timezone.key}, "
                        f"in {duration(between(local_now, at.until))}",
                "at": iso(at.until),
            }
        shifts = team.on_call_shifts(local_now, local_now + SHIFT_LOOKAHEAD)
        current = [shift for shift in shifts if shift.start <= local_now < shift.end]
        on_call = [
            {"id": shift.member, "name": _name(team, shift.member), "until": moment(shift.end, team), "until_iso": iso(shift.end)}
            for shift in current
        ]
        promise = promise_now(team, local_now, stats)
        teams.append({
            "id": team.id,
            "name": team.name,
            "zone": team.timezone.key,
            "local_now": moment(local_now, team),
            "mode": at.mode,
            "source": at.source,
            "note": at.note,
            "since": moment(at.since, team),
            "until": moment(at.until, team),
            "since_iso": iso(at.since),
            "until_iso": iso(at.until),
            "on_call": on_call,
            "transition": transition,
            "promise": {"within": duration(promise.within), "reply_by": moment(promise.reply_by, team), "source": promise.source},
            "gaps": [str(gap) for gap in team_gaps(team, local_now, local_now + timedelta(days=GAP_DAYS))],
        })
    return teams


def _name(team: Team, member: str) -> str:
    staff = team.staff.get(member)
    return staff.name if staff is not None and staff.name else member


# -- timeline -------------------------------------------------------------------------


def _hours_only(team: Team) -> Team:
    return Team(team.id, timezone=team.timezone, hours=team.hours)


def _with_holidays(team: Team) -> Team:
    return Team(team.id, timezone=team.timezone, hours=team.hours, holidays=team.holidays)


def _offset_change(start: datetime, end: datetime) -> datetime | None:
    """The first instant in ``[start, end)`` whose UTC offset differs from ``start``'s (to the minute)."""
    offset = start.utcoffset()
    low, high = start, end
    if datetime.fromtimestamp(end.timestamp() - 1, start.tzinfo).utcoffset() == offset:
        return None
    while between(low, high) > timedelta(minutes=1):
        middle = datetime.fromtimestamp((low.timestamp() + high.timestamp()) / 2, UTC)
        if middle.astimezone(start.tzinfo).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high.astimezone(start.tzinfo)


def timeline(team: Team, first: date, days: int) -> dict[str, Any]:
    """``days`` local days of a team's coverage from ``first`` as SVG geometry and data.

    Lanes per day: the weekly hours alone, holidays, overrides, on-call shifts, and the
    effective coverage (:meth:`schedules.Team.pieces`, the pieces ``coverage ics``
    exports; a piece's mode is what ``coverage at`` answers inside it), with coverage
    gaps (:func:`schedules.gaps.team_gaps`) hatched on it. x is elapsed time since the
    local midnight, so a daylight-saving day is 23 or 25 hours long and marked.
    """
    start = local_midnight(team, first)
    end = local_midnight(team, first + timedelta(days=days))
    zone = team.timezone
    lanes: dict[str, list[Any]] = {
        "effective": [(p.start, p.end, p.mode, p.source, p.note) for p in team.pieces(start, end)],
        "hours": [(p.start, p.end, p.mode, p.source, None) for p in _hours_only(team).pieces(start, end) if p.mode != "closed"],
        "holidays": [(p.start, p.end, p.mode, p.source, p.note) for p in _with_holidays(team).pieces(start, end) if p.source == "holiday"],
        "overrides": [(p.start, p.end, p.mode, p.source, p.note) for p in team.pieces(start, end) if p.source == "override"],
        "on_call": [(s.start, s.end, "on_call", "on_call", _name(team, s.member)) for s in team.on_call_shifts(start, end)],
    }
    gaps = [(g.start, g.end) for g in team_gaps(team, start, end) if g.start is not None and g.end is not None]
    row_height = sum(height for _, _, height in LANES) + LANE_GAP * (len(LANES) - 1) + ROW_PADDING
    rows = []
    for index in range(days):
        day = first + timedelta(days=index)
        day_start = local_midnight(team, day)
        day_end = local_midnight(team, day + timedelta(days=1))
        hours = between(day_start, day_end).total_seconds() / 3600
        y = AXIS_HEIGHT + index * row_height
        change = _offset_change(day_start, day_end)
        row: dict[str, Any] = {
            "day": day.isoformat(),
            "label": day.strftime("%a %d %b"),
            "y": y,
            "hours": hours,
            "dst": hours != 24,
            "dst_label": f"DST {hours:g} h" if hours != 24 else None,
            "dst_x": None if change is None else _x(change, day_start),
            "dst_at": None if change is None else change.strftime("%H:%M %Z"),
            "width": hours * HOUR_WIDTH,
            "segments": [],
            "gaps": [],
        }
        lane_y = y + ROW_PADDING // 2
        for name, _title, height in LANES:
            for seg_start, seg_end, mode, source, note in lanes[name]:
                if seg_end <= day_start or seg_start >= day_end:
                    continue
                left, right = max(seg_start, day_start), min(seg_end, day_end)
                overnight = name in ("hours", "effective") and mode != "closed" and (seg_start < day_start or seg_end > day_end)
                row["segments"].append({
                    "lane": name, "mode": mode, "source": source, "note": note,
                    "x": _x(left, day_start), "y": lane_y, "w": max(_x(right, day_start) - _x(left, day_start), 0.5),
                    "h": height, "start": iso(left.astimezone(zone)), "end": iso(right.astimezone(zone)),
                    "local": f"{left.astimezone(zone).strftime('%a %H:%M')}–{right.astimezone(zone).strftime('%a %H:%M')} {zone.key}",
                    "label": _segment_label(name, mode, source, note),
                    "overnight": overnight,
                    "overnight_side": ("left" if seg_start < day_start else "") + ("right" if seg_end > day_end else ""),
                })
            if name == "effective":
                for gap_start, gap_end in gaps:
                    if gap_end <= day_start or gap_start >= day_end:
                        continue
                    left, right = max(gap_start, day_start), min(gap_end, day_end)
                    row["gaps"].append({"x": _x(left, day_start), "y": lane_y, "w": _x(right, day_start) - _x(left, day_start), "h": height,
                                        "start": iso(left.astimezone(zone)), "end": iso(right.astimezone(zone))})
            row.setdefault("lane_y", {})[name] = lane_y
            lane_y += height + LANE_GAP
        rows.append(row)
    return {
        "team": team.id,
        "zone": zone.key,
        "from": iso(start),
        "to": iso(end),
        "first": first.isoformat(),
        "days": days,
        "rows": rows,
        "lanes": [{"name": name, "title": title} for name, title, _ in LANES],
        "width": LABEL_WIDTH + 25 * HOUR_WIDTH + 10,
        "height": AXIS_HEIGHT + days * row_height + 4,
        "label_width": LABEL_WIDTH,
        "hour_width": HOUR_WIDTH,
        "ticks": [{"x": LABEL_WIDTH + hour * HOUR_WIDTH, "label": f"{hour:02d}"} for hour in range(0, 25, 3)],
    }


def _x(instant: datetime, day_start: datetime) -> float:
    return round(LABEL_WIDTH + between(day_start, instant).total_seconds() / 3600 * HOUR_WIDTH, 2)


def _segment_label(lane: str, mode: str, source: str, note: str | None) -> str:
    if lane == "on_call":
        return f"on call: {note}"
    label = mode
    if source in ("holiday", "override"):
        label += f" ({source}: {note})" if note else f" ({source})"
    return label


# -- preview --------------------------------------------------------------------------


CHANNELS = ("facebook", "instagram", "whatsapp", "x", "telegram", "generic")
KINDS = ("dm", "mention", "comment")


def preview(
    triage: Triage,
    team: Team,
    *,
    account: str,
    channel: str,
    kind: str,
    at: datetime,
    text: str,
    lang: str | None,
    author: str | None,
    stats: FirstResponseStats,
) -> dict[str, Any]:
    """What the worker would decide for one message: :meth:`Triage.decide` on a new conversation.

    The decision and its acknowledgment (the exact text, in the language the policy
    picks), who is notified, when each escalation step is due if nobody claims
    (:func:`promises.rules.escalation_due` step after step), and the reply-window plan
    (:func:`records.platforms.window_closes`, :func:`promises.rules.early_route_at`).
    """
    event = {
        "id": "console:preview", "account": account, "channel": channel, "kind": kind,
        "conversation": "console:preview", "author": {"id": "console-preview", "name": author or None, "followers": None},
        "text": text or None, "lang": lang or None, "at": iso(at), "in_reply_to": None,
    }
    outcome = triage.decide(orjson.dumps(event), None, stats)
    decision = outcome.decision
    notified = []
    steps = []
    if outcome.route is not None:
        notified = [{"id": n.member, "name": n.name, "via": [uri.partition(":")[0] for uri in n.uris]} for n in outcome.route.to]
        pending = pending_from_route(outcome.route)
        chain = team.escalation.chain_for(pending.mode)
        for n in range(chain.steps):
            due = escalation_due(replace(pending, sent=n), team)
            if due is None:
                break
            steps.append({"n": n + 1, "due": moment(due, team), "due_iso": iso(due), "link": str(chain.chain[n % len(chain.chain)])})
    closes = window_closes(channel, kind, at)
    coverage_at = team.at(at)
    window: dict[str, Any] = {"closes": moment(closes, team) if closes else None, "closes_iso": iso(closes)}
    if closes is not None:
        early = early_route_at(team, channel, kind, at, at, team.escalation.window_margin)
        window["early_route"] = moment(early, team) if early else None
        if coverage_at.next_open is not None:
            window["at_opening"] = reply_mechanism(channel, kind, at, coverage_at.next_open)
    return {
        "decision": decision.to_dict(),
        "ack": None if decision.ack is None else {"text": decision.ack.text, "lang": decision.ack.lang, "public": decision.ack.public},
        "notified": notified,
        "escalation": steps,
        "window": window,
        "mode": coverage_at.mode,
        "at_local": moment(at, team),
        "at_iso": iso(at.astimezone(team.timezone)),
    }


# -- queue ----------------------------------------------------------------------------


def queue(coverage: Coverage, projection: Projection, now: datetime, *, team_id: str | None = None,
          limit: int = QUEUE_LIMIT, backlog_limit: int | None = None) -> dict[str, Any]:
    """Conversations waiting for a person, in three sections.

    ``routed``: routed or paged and unclaimed, with the escalation step reached and the
    next step's time; ``claimed``: claimed and not answered; ``backlog``: waiting for the
    next handover (or the inbox when open), per team in handover order
    (:func:`promises.rules.handover_digest`: urgent first, then longest waiting; the
    follower count is never read). Each with its wait, promised reply-by and the
    platform's reply-window deadline. At most ``limit`` rows per section, and at most
    ``backlog_limit`` (default ``limit``) per team's backlog; the counts are whole.
    """
    routed: list[tuple[int, str]] = []
    claimed: list[tuple[int, str]] = []
    backlog: dict[str, list[tuple[bool, int, str]]] = {}
    for conversation, state in projection.open_conversations():
        if team_id is not None and state.team != team_id:
            continue
        if state.team not in coverage.teams:
            continue
        since = state.waiting_since or state.customer_at or 0
        if state.claimed_by:
            claimed.append((since, conversation))
        elif conversation in projection.pending:
            routed.append((since, conversation))
        else:
            backlog.setdefault(state.team, []).append((not state.urgent, since, conversation))
    routed.sort()
    claimed.sort()
    backlog_sections = []
    for tid in sorted(backlog):
        team = coverage.teams[tid]
        items = sorted(backlog[tid])[: limit if backlog_limit is None else backlog_limit]
        opening = team.at(now).next_open
        digest = handover_digest(team, (_backlog_item(c, projection) for _, _, c in items), opening or now)
        backlog_sections.append({
            "team": tid,
            "opening": moment(opening, team) if team.at(now).mode != "open" else "now (the team's inbox)",
            "count": len(backlog[tid]),
            "rows": [_row(coverage, projection, item.conversation, now) for item in digest.items],
        })
    return {
        "routed": {"count": len(routed), "rows": [_row(coverage, projection, c, now) for _, c in routed[:limit]]},
        "claimed": {"count": len(claimed), "rows": [_row(coverage, projection, c, now) for _, c in claimed[:limit]]},
        "backlog": backlog_sections,
        "total": len(routed) + len(claimed) + sum(len(v) for v in backlog.values()),
    }


def _utc(seconds: int | None, team: Team) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, team.timezone)


def _backlog_item(conversation: str, projection: Projection) -> BacklogItem:
    state = projection.states[conversation]
    since = datetime.fromtimestamp(state.waiting_since or state.customer_at or 0, UTC)
    reply_by, promised = state.promise()
    return BacklogItem(
        conversation=conversation, channel=state.channel or "generic", waiting_since=since,
        urgent=state.urgent, ack_text=promised,
        reply_by=None if reply_by is None else datetime.fromtimestamp(reply_by, UTC),
        kind=state.kind, account=state.account, author_name=state.author_name, text=state.text,
    )


def _row(coverage: Coverage, projection: Projection, conversation: str, now: datetime) -> dict[str, Any]:
    state = projection.states[conversation]
    team = coverage.teams[state.team]
    since = _utc(state.waiting_since or state.customer_at, team)
    reply_by, promised = state.promise()
    promised_by = _utc(reply_by, team)
    last = _utc(state.customer_at, team)
    closes = window_closes(state.channel or "generic", state.kind, last) if last is not None else None
    pending = projection.pending.get(conversation)
    escalation = None
    if pending is not None:
        due = escalation_due(pending, team)
        escalation = {"step": pending.sent, "steps": team.escalation.chain_for(pending.mode).steps,
                      "next": moment(due, team) if due else "chain done", "next_iso": iso(due),
                      "routed_to": [_name(team, m) for m in pending.routed_to]}
    return {
        "conversation": conversation,
        "team": team.id,
        "channel": state.channel or "—",
        "author": state.author_name,
        "text": state.text,
        "urgent": state.urgent,
        "wait": duration(between(since, now)) if since is not None else "—",
        "since": moment(since, team),
        "reply_by": moment(promised_by, team) if promised_by else "no promise",
        "overdue": promised_by is not None and now > promised_by,
        "promised": promised,
        "window": moment(closes, team) if closes else "no window",
        "claimed_by": _name(team, state.claimed_by) if state.claimed_by else None,
        "claimed_at": moment(_utc(state.claimed_at, team), team) if state.claimed_at else None,
        "escalation": escalation,
        "staff": [{"id": member.id, "name": member.name or member.id} for member in team.staff.values()],
        "default_member": (pending.routed_to[0] if pending is not None and pending.routed_to else None),
    }


# -- reply times ------------------------------------------------------------------------


def reply_times(coverage: Coverage, answers: Iterable[Answer], messages: Iterable[tuple[str, float]],
                stats: FirstResponseStats, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    """First-response p50/p90 per team and mode (:func:`promises.sla.sla_rows`, the ``sla report``'s),
    the promise made now beside them and how often promises were kept, and a weekday ×
    hour heatmap of customer messages per team (team-local time) in ``[start, end)``."""
    answers = [a for a in answers if start <= a.response.customer_at < end]
    rows = []
    for row in sla_rows([a.response for a in answers], coverage, start, end):
        team = coverage.teams[row.team]
        promised = [a for a in answers if a.response.team == row.team and a.response.mode == row.mode and a.kept is not None]
        kept = sum(1 for a in promised if a.kept)
        configured = team.triage.reply_within.get(row.mode if row.mode != "closed" else "open", DEFAULT_REPLY)
        mode_for_promise = row.mode if row.mode != "closed" else "open"
        within = promised_reply_within(stats, team, mode_for_promise, team.at(now), configured)
        rows.append({
            "team": row.team, "mode": row.mode, "count": row.count, "p50": duration(row.median), "p90": duration(row.p90),
            "target": duration(row.target) if row.target else "—", "breaches": row.breaches,
            "promised_now": duration(within), "promised_source": _source(team, mode_for_promise, stats, configured, within),
            "kept": kept, "with_promise": len(promised),
            "honest": None if not promised else round(100 * kept / len(promised)),
        })
    low, high = start.timestamp(), end.timestamp()
    heat: dict[str, list[list[int]]] = {tid: [[0] * 24 for _ in range(7)] for tid in coverage.teams}
    for tid, at in messages:
        if low <= at < high and tid in heat:
            local = datetime.fromtimestamp(at, coverage.teams[tid].timezone)
            heat[tid][local.weekday()][local.hour] += 1
    heatmaps = []
    for tid, grid in heat.items():
        peak = max(max(day) for day in grid)
        heatmaps.append({"team": tid, "zone": coverage.teams[tid].timezone.key, "peak": peak, "total": sum(map(sum, grid)),
                         "days": [{"name": WEEKDAYS[d], "cells": [{"hour": h, "count": c, "level": _level(c, peak)} for h, c in enumerate(grid[d])]}
                                  for d in range(7)]})
    return {"rows": rows, "heatmaps": heatmaps, "from": start.date().isoformat(), "to": end.date().isoformat()}


def _level(count: int, peak: int) -> int:
    if count == 0 or peak == 0:
        return 0
    return min(4, 1 + (4 * count - 1) // peak)


# -- overrides ------------------------------------------------------------------------


def overrides(team: Team, api_overrides: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A team's coverage overrides in force (the file's and the API's) and the API's own (removable)."""
    return {
        "in_force": [{"from": str(o.start), "to": str(o.end), "mode": o.mode, "note": o.note} for o in team.overrides],
        "api": [dict(o) for o in api_overrides if o.get("team") == team.id],
        "staff": [{"id": member.id, "name": member.name or member.id} for member in team.staff.values()],
    }
