"""The bounded, expiring memory of produced event ids."""

from __future__ import annotations

from datetime import timedelta

from edge.dedupe import RecentIds


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRecentIds:
    def test_repeat_is_not_fresh(self) -> None:
        """An id claimed twice is fresh only the first time, also within one claim."""
        recent = RecentIds(timedelta(minutes=5), 10, FakeClock())
        assert (["a", "b"], ["c"]) == (recent.claim(["a", "b", "a"]), recent.claim(["b", "c"]))

    def test_expires_after_ttl(self) -> None:
        """After the TTL the same id is fresh again."""
        clock = FakeClock()
        recent = RecentIds(timedelta(minutes=5), 10, clock)
        recent.claim(["a"])
        clock.now += 299
        still_known = recent.claim(["a"])
        clock.now += 2
        assert ([], ["a"]) == (still_known, recent.claim(["a"]))

    def test_capacity_drops_the_oldest(self) -> None:
        """Beyond capacity the oldest id is forgotten first."""
        recent = RecentIds(timedelta(hours=1), 2, FakeClock())
        recent.claim(["a", "b", "c"])
        assert (False, True, True, 2) == ("a" in recent, "b" in recent, "c" in recent, len(recent))

    def test_release_forgets(self) -> None:
        """A released id (its production failed) is fresh again."""
        recent = RecentIds(timedelta(hours=1), 10, FakeClock())
        recent.claim(["a", "b"])
        recent.release(["a"])
        assert ["a"] == recent.claim(["a", "b"])
