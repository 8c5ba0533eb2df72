"""What an idle worker asks of the broker: the fetch wait on Tansu and the reconciler at rest.

``python -m bench.idle`` measured an idle worker's CPU; these check the behaviour that
lowered it, never how fast anything is.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.reconcile import Reconciler
from streams.settings import Settings
from streams.transport import FETCH_MAX_WAIT_MS, IDLE_FETCH_MAX_WAIT_MS, FetchWait


def test_the_fetch_wait_stays_short_while_records_come() -> None:
    wait = FetchWait(busy_ms=25, idle_ms=100, idle_after=2.0)
    assert 25 == wait.after_fetch(True, 1000.0)
    assert 25 == wait.after_fetch(False, 1001.0)
    assert 25 == wait.after_fetch(True, 1002.5)
    assert 25 == wait.after_fetch(False, 1004.4)


def test_the_fetch_wait_grows_once_idle_and_shrinks_at_the_first_record() -> None:
    wait = FetchWait(busy_ms=25, idle_ms=100, idle_after=2.0)
    assert 25 == wait.after_fetch(False, 50.0)  # the first fetch starts the clock
    assert 25 == wait.after_fetch(False, 51.9)
    assert 100 == wait.after_fetch(False, 52.0)
    assert 100 == wait.after_fetch(False, 500.0)
    assert 25 == wait.after_fetch(True, 500.1)
    assert 25 == wait.after_fetch(False, 500.2)


def test_the_defaults_are_the_tansu_wait_and_a_longer_idle_one() -> None:
    wait = FetchWait()
    assert (FETCH_MAX_WAIT_MS, IDLE_FETCH_MAX_WAIT_MS) == (wait.busy_ms, wait.idle_ms)
    assert wait.idle_ms > wait.busy_ms


class Consumer:
    def __init__(self, name: str, log: list[tuple[str, str, int]]) -> None:
        self.name, self.log = name, log
        self.held = {TopicPartition("t", p) for p in range(4)}
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)
        self.log.append(("pause", self.name, len(tps)))

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)
        self.log.append(("resume", self.name, len(tps)))


async def nothing(*_: object) -> None:
    return None


def resting(log: list[tuple[str, str, int]]) -> Reconciler:
    reconciler = Reconciler(Settings(), nothing)
    reconciler._input = Consumer("input", log)  # type: ignore[assignment]
    reconciler._decisions = Consumer("decisions", log)  # type: ignore[assignment]
    reconciler._watermarks = Consumer("watermarks", log)  # type: ignore[assignment]
    reconciler._rest()
    return reconciler


async def test_the_reconciler_fetches_only_during_a_pass() -> None:
    log: list[tuple[str, str, int]] = []
    reconciler = resting(log)
    consumers = (reconciler._input, reconciler._decisions, reconciler._watermarks)
    assert all(c.paused == c.held for c in consumers)  # type: ignore[union-attr]
    seen: list[tuple[bool, bool, bool]] = []

    async def one_pass() -> int:
        seen.append(tuple(bool(c.paused) for c in consumers))  # type: ignore[union-attr,arg-type]
        return 2

    reconciler._pass = one_pass  # type: ignore[method-assign]
    assert 2 == await reconciler.run_pass()
    assert [(False, False, True)] == seen  # the watermarks consumer never fetches
    assert all(c.paused == c.held for c in consumers)  # type: ignore[union-attr]


async def test_a_failed_pass_leaves_the_consumers_at_rest() -> None:
    log: list[tuple[str, str, int]] = []
    reconciler = resting(log)

    async def failing() -> int:
        raise ConnectionError("node 2 is down")

    reconciler._pass = failing  # type: ignore[method-assign]
    try:
        await reconciler.run_pass()
    except ConnectionError:
        pass
    assert reconciler._input.paused == reconciler._input.held  # type: ignore[union-attr]
    assert reconciler._decisions.paused == reconciler._decisions.held  # type: ignore[union-attr]
