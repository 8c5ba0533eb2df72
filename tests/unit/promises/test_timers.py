"""PromiseTimers: a real AsyncIOScheduler firing at each opening and sweeping periodically."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from schedules import Team
from streams.timers import PromiseTimers
from tests.support.promises import CARE_IT, ROME, coverage_of, rome
from tests.support.promises_rules import DST_TEAM

WAIT = 10.0  # seconds: a bound on a wait for an event, never a sleep


def _wall(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S")


def near_openings(count: int) -> tuple[str, list[datetime]]:
    """A team closed except for one-second open overrides starting 2 s, 4 s, … from now."""
    first = datetime.now(ROME).replace(microsecond=0) + timedelta(seconds=2)
    starts = [first + timedelta(seconds=2 * index) for index in range(count)]
    overrides = ", ".join(
        f'{{from: "{_wall(start)}", to: "{_wall(start + timedelta(seconds=1))}", mode: open}}' for start in starts
    )
    return f"teams: {{soon: {{timezone: Europe/Rome, overrides: [{overrides}]}}}}", starts


async def _never(*_: object) -> None:
    raise AssertionError("not expected to be called")


class TestPromiseTimers:
    async def test_fires_at_each_opening_and_replans(self) -> None:
        """Each opening fires once, with its instant; the next is planned after each fire."""
        text, starts = near_openings(2)
        fired: list[tuple[str, datetime]] = []
        done = asyncio.Event()

        async def on_opening(team: Team, opening_at: datetime) -> None:
            fired.append((team.id, opening_at))
            if len(fired) == len(starts):
                done.set()

        timers = PromiseTimers(coverage_of(text), on_opening=on_opening, on_sweep=_never, sweep_every=timedelta(hours=1))
        timers.start()
        try:
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            timers.shutdown()
        assert [("soon", start) for start in starts] == fired

    async def test_sweep_gets_the_clock(self) -> None:
        """The periodic sweep is called with the injected clock's instant."""
        now = rome("2026-11-23 21:00")
        seen: list[datetime] = []
        swept = asyncio.Event()

        async def on_sweep(at: datetime) -> None:
            seen.append(at)
            swept.set()

        timers = PromiseTimers(
            coverage_of(CARE_IT), on_opening=_never, on_sweep=on_sweep,
            sweep_every=timedelta(milliseconds=100), clock=lambda: now,
        )
        timers.start()
        try:
            await asyncio.wait_for(swept.wait(), WAIT)
        finally:
            timers.shutdown()
        assert now == seen[0]

    async def test_a_wake_sweeps_before_the_interval_and_may_ask_for_the_next(self) -> None:
        """The due-time index's next instant (``wake_at``) brings a sweep long before the hourly one;
        that sweep's own wake is a job of its own, so it runs too."""
        now = rome("2026-11-23 21:00")
        seen: list[datetime] = []
        twice = asyncio.Event()

        async def on_sweep(at: datetime) -> None:
            seen.append(at)
            if len(seen) == 1:
                timers.wake_at(now)  # the sweep asks for the next wake, as streams.sweeps.plan_wake does
            else:
                twice.set()

        timers = PromiseTimers(coverage_of(CARE_IT), on_opening=_never, on_sweep=on_sweep,
                               sweep_every=timedelta(hours=1), clock=lambda: now)
        timers.start()
        try:
            timers.wake_at(now)
            await asyncio.wait_for(twice.wait(), WAIT)
        finally:
            timers.shutdown()
        assert [now, now] == seen[:2]

    async def test_no_wake_when_the_periodic_sweep_comes_first(self) -> None:
        now = rome("2026-11-23 21:00")
        timers = PromiseTimers(coverage_of(CARE_IT), on_opening=_never, on_sweep=_never,
                               sweep_every=timedelta(hours=1), clock=lambda: now)
        timers.start()
        try:
            timers.wake_at(now + timedelta(hours=2))
            assert [] == [job.id for job in timers._scheduler.get_jobs() if job.id.startswith("sweep-due:")]
        finally:
            timers.shutdown()

    @pytest.mark.parametrize(
        ("text", "team", "now", "expected"),
        [
            pytest.param(CARE_IT, "care-it", "2026-11-27 20:00", "2026-11-30T09:00:00+01:00", id="over_the_weekend"),
            pytest.param(DST_TEAM, "night", "2026-03-28 12:00", "2026-03-29T03:00:00+02:00", id="spring_skip_hour"),
            pytest.param(DST_TEAM, "night", "2026-10-24 12:00", "2026-10-25T02:30:00+02:00", id="fall_back_first_occurrence"),
        ],
    )
    async def test_plans_next_opening_from_the_clock(self, text: str, team: str, now: str, expected: str) -> None:
        """Started (or restarted), each team's next opening is planned from the clock."""
        timers = PromiseTimers(coverage_of(text), on_opening=_never, on_sweep=_never, clock=lambda: rome(now))
        timers.plan(timers.coverage)
        assert {team: expected} == {key: value.isoformat() for key, value in timers.planned().items()}

    async def test_coverage_swap_replans(self) -> None:
        """A new coverage moves a team's opening and drops teams that left."""
        both = coverage_of(CARE_IT + DST_TEAM.replace("teams:\n", ""))
        timers = PromiseTimers(both, on_opening=_never, on_sweep=_never, clock=lambda: rome("2026-11-27 20:00"))
        timers.plan(timers.coverage)
        swapped = CARE_IT.replace("    hours:\n", '    overrides: [{from: "2026-11-28 10:00", to: "2026-11-28 12:00", mode: open}]\n    hours:\n')
        timers.plan(coverage_of(swapped))
        assert {"care-it": rome("2026-11-28 10:00")} == timers.planned()
