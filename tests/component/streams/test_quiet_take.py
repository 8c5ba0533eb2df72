"""``streams.transport.quiet_noack_take``: Faust's ``noack_take`` without its idle ticks.

In memory (``agent.test_context()``): the values come through in order, in batches of
at most ``max_``, each event acknowledged once its batch is done; a value that comes
after a quiet spell is handed on too (the empty buffer waits for its first value
without a timeout). Nothing here measures time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import faust

from streams.transport import quiet_noack_take
from tests.support.component import NO_BROKER

WITHIN = 5.0


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WITHIN):
        while not condition():
            await asyncio.sleep(0.01)


def batching_app(max_: int) -> tuple[faust.App, object, list[list[int]]]:
    app = faust.App("quiet-take-test", broker=NO_BROKER, store="memory://", web_enabled=False)
    channel = app.channel()
    batches: list[list[int]] = []

    @app.agent(channel, name="batcher")
    async def batcher(stream: faust.StreamT) -> None:
        async for events in quiet_noack_take(stream, max_, 0.005):
            batches.append([int(event.value) for event in events])

    return app, batcher, batches


async def test_values_come_through_in_order_in_batches_of_at_most_max() -> None:
    _app, agent, batches = batching_app(max_=3)
    async with agent.test_context() as context:  # type: ignore[attr-defined]
        for n in range(10):
            await context.put(str(n).encode())
        await until(lambda: sum(len(b) for b in batches) == 10)
    assert list(range(10)) == [n for batch in batches for n in batch]
    assert all(1 <= len(batch) <= 3 for batch in batches)


async def test_a_value_after_a_quiet_spell_is_handed_on() -> None:
    _app, agent, batches = batching_app(max_=500)
    async with agent.test_context() as context:  # type: ignore[attr-defined]
        await context.put(b"1")
        await until(lambda: batches == [[1]])
        await asyncio.sleep(0.05)  # quiet: the buffer is empty and waits without a timeout
        await context.put(b"2")
        await context.put(b"3")
        await until(lambda: sum(len(b) for b in batches) == 3)
    assert [1, 2, 3] == [n for batch in batches for n in batch]
