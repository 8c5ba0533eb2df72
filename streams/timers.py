"""Timers that wake promise-keeping up: the handover at each opening and a periodic sweep.

APScheduler 3.x (:class:`~apscheduler.schedulers.asyncio.AsyncIOScheduler`) only
triggers; what an opening is (:func:`promises.rules.next_opening`, from the coverage
engine, daylight-saving correct) and what is due at a sweep (escalations, reminders,
early routes) are decided in :mod:`promises.rules` and :mod:`promises.ticks` from the
tables' state (the sweeps are :mod:`streams.sweeps`), and what has expired (rows older than the retention) in :mod:`streams.retention`.

Between periodic sweeps the sweep may ask for one more at the next instant its due-time
index holds (:meth:`PromiseTimers.wake_at`, :mod:`streams.due_index`): an escalation
or a reminder is sent at its due time, not up to one sweep interval later, and a sweep
costs only what is due.

Nothing is kept here that a restart would lose: each team has one job, for its next
opening, planned from the coverage and the clock, and planned again after every fire
and on every coverage swap. So a worker that starts, or that takes over the partitions
after a rebalance, calls :meth:`PromiseTimers.plan` and is complete; the sweep finds
pending escalations and overdue conversations in the tables.

Daylight saving: the scheduler fires at instants (aware, UTC), never at wall-clock
times; the instants come from the engine, whose policy is stated in
:meth:`schedules.WallTime.to_instant` (an opening in a spring-forward gap happens at the
end of the gap, one at an ambiguous fall-back time at its first occurrence).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from promises.rules import next_opening
from schedules import Coverage, Team

Clock = Callable[[], datetime]
OpeningCallback = Callable[[Team, datetime], Awaitable[None]]
SweepCallback = Callable[[datetime], Awaitable[None]]

_OPENING_PREFIX = "opening:"
_SWEEP_JOB = "sweep"
_WAKE_PREFIX = "sweep-due:"


def _system_clock() -> datetime:
    return datetime.now(UTC)


class PromiseTimers:
    """One scheduler per worker: a job at each team's next opening and a periodic sweep.

    ``on_opening(team, opening_at)`` is awaited at each transition to ``open``;
    ``on_sweep(now)`` every ``sweep_every``. ``clock`` is the instant planning starts
    from (the system clock unless a test gives another); an opening fires when that
    clock reaches it, taking the clock to advance like the system clock from the moment
    of planning (so a test clock set just before an opening fires it at once). A fire that is late by up to
    ``grace`` still runs (a busy loop, a short pause); later than that it is skipped and
    the next one planned, and the sweep catches what the missed handover would have
    shown. Call :meth:`start` on the running event loop, :meth:`shutdown` when done.
    """

    def __init__(
        self,
        coverage: Coverage,
        *,
        on_opening: OpeningCallback,
        on_sweep: SweepCallback,
        sweep_every: timedelta = timedelta(minutes=1),
        clock: Clock = _system_clock,
        grace: timedelta = timedelta(minutes=30),
    ) -> None:
        self._coverage = coverage
        self._on_opening = on_opening
        self._on_sweep = on_sweep
        self._sweep_every = sweep_every
        self._clock = clock
        self._grace = grace
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._wake_id: str | None = None
        self._wakes = 0

    @property
    def coverage(self) -> Coverage:
        """The coverage the openings are planned from."""
        return self._coverage

    def start(self) -> None:
        """Start the scheduler on the running loop: plan every team and the sweep."""
        self._scheduler.add_job(
            self._sweep,
            IntervalTrigger(seconds=self._sweep_every.total_seconds(), timezone=UTC),
            id=_SWEEP_JOB,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(self._grace.total_seconds()),
        )
        self.plan(self._coverage)
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop the scheduler without waiting for running jobs (they are idempotent)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def plan(self, coverage: Coverage) -> None:
        """Swap to ``coverage`` and plan each team's next opening from the clock.

        Teams that left the coverage lose their job; the others get the opening of the
        new coverage (an override added today moves tonight's handover).
        """
        self._coverage = coverage
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_OPENING_PREFIX) and job.id[len(_OPENING_PREFIX):] not in coverage.teams:
                job.remove()
        now = self._clock()
        for team in coverage.teams.values():
            self._plan_team(team, now)

    def planned(self) -> dict[str, datetime]:
        """Each team's planned opening (team id to instant, in the team's zone)."""
        found: dict[str, datetime] = {}
        for job in self._scheduler.get_jobs():
            if job.id.startswith(_OPENING_PREFIX):
                team_id = job.id[len(_OPENING_PREFIX):]
                team = self._coverage.teams.get(team_id)
                if team is not None:
                    found[team_id] = job.args[1].astimezone(team.timezone)
        return found

    def _plan_team(self, team: Team, after: datetime) -> None:
        job_id = _OPENING_PREFIX + team.id
        opening = next_opening(team, after)
        if opening is None:
            if self._scheduler.get_job(job_id) is not None:
                self._scheduler.remove_job(job_id)
            return
        # The scheduler waits on the system clock: fire after the time the clock has
        # left until the opening (with the system clock, exactly at the opening).
        run_date = _system_clock() + max(opening - self._clock(), timedelta(0))
        self._scheduler.add_job(
            self._opening,
            DateTrigger(run_date=run_date, timezone=UTC),
            args=(team.id, opening),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=int(self._grace.total_seconds()),
        )

    def wake_at(self, instant: datetime) -> None:
        """Sweep also at ``instant`` (once), when it comes before the next periodic sweep.

        The sweep calls it with the next instant of its due-time index
        (:mod:`streams.due_index`), so an escalation step or a reminder goes out at its
        due time rather than up to ``sweep_every`` later. One wake is planned at a
        time, the earliest asked for: a later one is left to the sweep of the earlier
        (which asks again). An instant already past wakes at once. Each wake is its own
        job, so a wake asked for by the running wake's own sweep is not skipped as a
        second instance of it.
        """
        if not self._scheduler.running:
            return
        delay = max(instant - self._clock(), timedelta(0))
        run_date = _system_clock() + delay
        periodic = self._scheduler.get_job(_SWEEP_JOB)
        if delay >= self._sweep_every or (periodic is not None and periodic.next_run_time is not None
                                          and periodic.next_run_time <= run_date):
            return
        planned = None if self._wake_id is None else self._scheduler.get_job(self._wake_id)
        if planned is not None and planned.next_run_time is not None and planned.next_run_time <= run_date:
            return
        if planned is not None:
            planned.remove()
        self._wakes += 1
        self._wake_id = f"{_WAKE_PREFIX}{self._wakes}"
        self._scheduler.add_job(
            self._sweep,
            DateTrigger(run_date=run_date, timezone=UTC),
            id=self._wake_id,
            misfire_grace_time=int(self._grace.total_seconds()),
        )

    async def _opening(self, team_id: str, opening_at: datetime) -> None:
        team = self._coverage.teams.get(team_id)
        if team is None:
            return
        try:
            await self._on_opening(team, opening_at)
        finally:
            # Plan from the opening itself, not the clock: a late fire must not skip the
            # next opening, and a coverage swap during the callback is taken into account.
            current = self._coverage.teams.get(team_id)
            if current is not None:
                self._plan_team(current, opening_at)

    async def _sweep(self) -> None:
        await self._on_sweep(self._clock())
