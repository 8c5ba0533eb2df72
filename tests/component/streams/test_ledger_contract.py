"""One contract for the delivery ledgers: :class:`MemoryLedger` and :class:`TableLedger`.

Every test runs twice: on the memory ledger of :mod:`responders.delivery` (``[memory]``)
and on the outbox's ledger on its real Faust table (``[table]``), the table written
from inside an agent run with ``test_context()`` (a table is written from the event
being processed; conftest.py). What the delivery loop relies on: an unknown key has no
status; the last status set is the one read; keys are distinct, whatever their text.

One difference is not in the contract: the table refuses a write outside an agent or
stream (Faust's ``TypeError``, "Cannot modify table key from outside of stream
iteration"), the memory ledger does not, since :mod:`responders` knows no Faust. The
delivery loop writes only from the outbox agents in the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from responders.delivery import MemoryLedger
from responders.fakes.samples import fixed_clock
from schedules import Coverage
from streams.app import create_app
from streams.outbox import TableLedger, install
from tests.support.component import component_settings

STATUSES = ("sending", "retrying", "delivered", "dead")


class InAgent:
    """Runs functions inside an agent of ``app``, each as the processing of one event."""

    def __init__(self, app: Any) -> None:
        self._work: asyncio.Queue[tuple[Callable[[], Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._agent = app.agent(app.channel(), name="ledger-contract")(self._run)

    async def _run(self, stream: Any) -> None:
        async for _ in stream:
            work, result = await self._work.get()
            try:
                result.set_result(work())
            except Exception as exc:
                result.set_exception(exc)

    async def __aenter__(self) -> InAgent:
        self._context = self._agent.test_context()
        self._wrapper = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(*exc)

    async def run(self, work: Callable[[], Any]) -> Any:
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._work.put((work, result))
        await self._wrapper.put(b"next", key=b"ledger", wait=False)
        return await asyncio.wait_for(result, 5)


class Subject:
    """A ledger and how to call it: directly, or inside the agent."""

    def __init__(self, ledger: Any, agent: InAgent | None) -> None:
        self.ledger = ledger
        self._agent = agent

    async def set(self, key: str, status: str) -> None:
        await self._call(lambda: self.ledger.set(key, status))

    async def get(self, key: str) -> str | None:
        return await self._call(lambda: self.ledger.get(key))

    async def _call(self, work: Callable[[], Any]) -> Any:
        return work() if self._agent is None else await self._agent.run(work)


@pytest.fixture(params=("memory", "table"))
async def subject(request: pytest.FixtureRequest, tmp_path: Path, coverage: Coverage) -> AsyncIterator[Subject]:
    if request.param == "memory":
        yield Subject(MemoryLedger(), None)
        return
    app = create_app(component_settings(tmp_path / "data"), coverage)
    outbox = install(app, None, app.settings, clock=fixed_clock())
    async with InAgent(app) as agent:
        yield Subject(TableLedger(outbox.ledger_table, fixed_clock()), agent)


class TestLedgerContract:
    async def test_an_unknown_key_has_no_status(self, subject: Subject) -> None:
        assert await subject.get("ack:fb:m_unknown") is None

    @pytest.mark.parametrize("status", STATUSES)
    async def test_a_status_set_is_read_back(self, subject: Subject, status: str) -> None:
        await subject.set("ack:fb:m_abc123", status)
        assert status == await subject.get("ack:fb:m_abc123")

    async def test_the_last_status_set_is_the_one_read(self, subject: Subject) -> None:
        """sending, retrying, delivered: the ledger holds the newest, whatever came before."""
        for status in ("sending", "retrying", "delivered"):
            await subject.set("ack:fb:m_abc123", status)
        assert "delivered" == await subject.get("ack:fb:m_abc123")

    async def test_keys_are_distinct_whatever_their_text(self, subject: Subject) -> None:
        """A key that prefixes another, and keys beyond ASCII, keep their own status."""
        keys = {"route:fb:m_1": "delivered", "route:fb:m_1:marta": "dead", "route:tg:é✓:luca": "retrying"}
        for key, status in keys.items():
            await subject.set(key, status)
        assert keys == {key: await subject.get(key) for key in keys}
