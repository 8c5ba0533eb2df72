"""Topic creation at worker start survives a broker that is still starting (pure: a fake admin client, a fake clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aiokafka.errors import (
    InvalidReplicationFactorError,
    KafkaConnectionError,
    NodeNotReadyError,
    NotControllerError,
    RequestTimedOutError,
    TopicAlreadyExistsError,
)

from streams.settings import Settings
from streams.worker import TopicCreationError, create_topics, is_transient, topic_names

SETTINGS = Settings(broker_url="kafka://k1:9092,kafka://k2:9092", app_id="t", partitions=4)
NAMES = topic_names(SETTINGS)


def created(*names: str, code: int = 0) -> SimpleNamespace:
    return SimpleNamespace(topic_errors=[(name, code, None) for name in names])


@dataclass
class Broker:
    """What the fake admin clients see: per attempt, an exception to raise at a step, or nothing."""

    failures: list[tuple[str, BaseException] | None] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)
    responses: list[SimpleNamespace] = field(default_factory=list)
    asked: list[list[str]] = field(default_factory=list)
    closed: int = 0
    attempts: int = 0

    def admin(self) -> FakeAdmin:
        failure = self.failures[self.attempts] if self.attempts < len(self.failures) else None
        self.attempts += 1
        return FakeAdmin(self, failure)


@dataclass
class FakeAdmin:
    broker: Broker
    failure: tuple[str, BaseException] | None

    def _step(self, name: str) -> None:
        if self.failure is not None and self.failure[0] == name:
            raise self.failure[1]

    async def start(self) -> None:
        self._step("start")

    async def list_topics(self) -> list[str]:
        self._step("list")
        return sorted(self.broker.existing)

    async def create_topics(self, topics: list[object]) -> SimpleNamespace:
        self._step("create")
        names = [t.name for t in topics]  # type: ignore[attr-defined]
        self.broker.asked.append(names)  # reached the broker
        if self.broker.responses:
            return self.broker.responses.pop(0)
        return created(*names)

    async def close(self) -> None:
        self.broker.closed += 1


@dataclass
class Clock:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(broker: Broker, clock: Clock, deadline: float = 60.0) -> Callable[[], object]:
    return lambda: create_topics(
        SETTINGS, deadline=deadline, admin=broker.admin, sleep=clock.sleep, clock=clock  # type: ignore[arg-type]
    )


class TestTransientErrors:
    async def test_a_starting_broker_is_tried_again_until_the_topics_exist(self) -> None:
        broker = Broker(failures=[
            ("start", KafkaConnectionError("Unable to bootstrap from [('k1', 9092)]")),
            ("create", NodeNotReadyError("node 1 not ready")),
            ("list", RequestTimedOutError()),
            None,
        ])
        clock = Clock()
        await run(broker, clock)()
        assert 4 == broker.attempts
        assert [NAMES] == broker.asked  # the create that worked
        assert [0.25, 0.5, 1.0] == clock.slept
        assert 4 == broker.closed  # every attempt's client is closed

    async def test_the_pause_grows_to_two_seconds_at_most(self) -> None:
        broker = Broker(failures=[("start", NodeNotReadyError())] * 6)
        clock = Clock()
        await run(broker, clock)()
        assert [0.25, 0.5, 1.0, 2.0, 2.0, 2.0] == clock.slept

    async def test_a_topic_the_broker_could_not_create_yet_is_asked_for_again(self) -> None:
        """No controller yet: the broker answers NOT_CONTROLLER for the topic (retriable)."""
        broker = Broker(responses=[created(*NAMES, code=NotControllerError.errno)])
        clock = Clock()
        await run(broker, clock)()
        assert [NAMES, NAMES] == broker.asked

    async def test_after_the_deadline_a_clear_error(self) -> None:
        broker = Broker(failures=[("start", NodeNotReadyError("node 1 not ready"))] * 1000)
        clock = Clock()
        with pytest.raises(TopicCreationError) as raised:
            await run(broker, clock, deadline=10.0)()
        message = str(raised.value)
        assert "k1:9092, k2:9092" in message
        assert "after 10 s" in message
        assert f"({broker.attempts} attempts)" in message
        assert "NodeNotReadyError" in message and "node 1 not ready" in message
        assert isinstance(raised.value.__cause__, NodeNotReadyError)
        assert 10.0 == pytest.approx(sum(clock.slept))  # the last pause stops at the deadline

    @pytest.mark.parametrize(
        "exc",
        [KafkaConnectionError(), NodeNotReadyError(), RequestTimedOutError(), TimeoutError(), NotControllerError()],
        ids=lambda e: type(e).__name__,
    )
    def test_what_counts_as_transient(self, exc: BaseException) -> None:
        assert is_transient(exc)


class TestLastingErrors:
    async def test_a_topic_the_broker_refuses_fails_at_once(self) -> None:
        broker = Broker(responses=[created(*NAMES, code=InvalidReplicationFactorError.errno)])
        clock = Clock()
        with pytest.raises(TopicCreationError, match=f"refused to create topic {NAMES[0]}: InvalidReplicationFactorError"):
            await run(broker, clock)()
        assert [] == clock.slept

    async def test_any_other_error_fails_at_once_and_names_the_broker(self) -> None:
        broker = Broker(failures=[("start", PermissionError("SASL authentication failed"))])
        clock = Clock()
        with pytest.raises(TopicCreationError, match="k1:9092, k2:9092: PermissionError: SASL authentication failed"):
            await run(broker, clock)()
        assert (1, []) == (broker.attempts, clock.slept)
        assert not is_transient(PermissionError())


class TestExistingTopics:
    async def test_only_missing_topics_are_created(self) -> None:
        broker = Broker(existing=set(NAMES[:3]))
        await run(broker, Clock())()
        assert [NAMES[3:]] == broker.asked

    async def test_a_topic_another_worker_created_first_is_no_error(self) -> None:
        broker = Broker(responses=[created(*NAMES, code=TopicAlreadyExistsError.errno)])
        await run(broker, Clock())()
        broker = Broker(failures=[("create", TopicAlreadyExistsError())])
        await run(broker, Clock())()
        assert 1 == broker.attempts

    async def test_nothing_missing_asks_for_nothing(self) -> None:
        broker = Broker(existing=set(NAMES))
        await run(broker, Clock())()
        assert [] == broker.asked
