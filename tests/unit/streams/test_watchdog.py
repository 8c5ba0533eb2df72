"""The stalled-partition watchdog's rule (pure: the clock is a parameter)."""

from __future__ import annotations

from streams.watchdog import Progress


class TestStalled:
    def test_partition_with_waiting_records_and_no_progress_stalls_after_the_limit(self) -> None:
        progress = Progress(after=15)
        progress.note(0, 114)
        assert [] == progress.stalled({0: 497}, now=100)
        assert [] == progress.stalled({0: 497}, now=114.9)
        assert [0] == progress.stalled({0: 497}, now=115)

    def test_progress_restarts_the_wait(self) -> None:
        progress = Progress(after=15)
        progress.note(0, 10)
        progress.stalled({0: 497}, now=100)
        progress.note(0, 11)
        assert [] == progress.stalled({0: 497}, now=115)
        assert [0] == progress.stalled({0: 497}, now=130)

    def test_caught_up_partition_never_stalls(self) -> None:
        """Tansu reports the end as the last batch's base + 1: end <= last decided + 1 is caught up."""
        progress = Progress(after=15)
        progress.note(2, 496)
        for now in (100, 200, 300):
            assert [] == progress.stalled({2: 497}, now=now)

    def test_nothing_decided_here_with_records_in_the_partition_stalls(self) -> None:
        """A partition taken over that this worker never read (the CI failure: committed -1)."""
        progress = Progress(after=15)
        progress.stalled({0: 497, 1: 0}, now=0)
        assert [0] == progress.stalled({0: 497, 1: 0}, now=20)

    def test_restart_from_a_previous_owners_commit_counts_its_records_as_decided(self) -> None:
        progress = Progress(after=15)
        progress.stalled({3: 660}, now=0)
        assert [3] == progress.stalled({3: 660}, now=15)
        progress.restart(3, now=15, committed=660)
        for now in (30, 60, 600):
            assert [] == progress.stalled({3: 660}, now=now)

    def test_restart_without_a_commit_waits_the_full_limit_again(self) -> None:
        progress = Progress(after=15)
        progress.stalled({0: 497}, now=0)
        progress.restart(0, now=15, committed=None)
        assert [] == progress.stalled({0: 497}, now=29)
        assert [0] == progress.stalled({0: 497}, now=30)

    def test_a_rebalance_restarts_every_wait(self) -> None:
        progress = Progress(after=15)
        progress.note(1, 5)
        progress.stalled({1: 100}, now=0)
        progress.rebalancing()
        assert [] == progress.stalled({1: 100}, now=20)
        assert [1] == progress.stalled({1: 100}, now=35)

    def test_revoked_and_unheld_partitions_are_forgotten(self) -> None:
        progress = Progress(after=15)
        progress.note(1, 5)
        progress.stalled({1: 100}, now=0)
        progress.forget(1)
        assert {} == progress.decided
        progress.stalled({}, now=10)
        assert [] == progress.stalled({1: 100}, now=20)
