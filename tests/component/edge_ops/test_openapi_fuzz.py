"""Schemathesis against the served OpenAPI document: no input makes the API answer 5xx."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given

from edge.actions import MemoryActionSink
from edge.config_store import MemoryConfigStore
from edge.ops import build_operations_api
from records.links import LinkSigner
from tests.support.ops import (
    AUTH,
    COVERAGE_TEXT,
    IDENTITY,
    LINK_SECRET,
    TOKEN,
    FixedClock,
)

EXAMPLES_PER_OPERATION = 12


class ServedApi:
    """The operations API on 127.0.0.1, on its own event loop in a thread (schemathesis calls it synchronously)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ops-api")

    async def _start(self) -> None:
        clock = FixedClock()
        store = MemoryConfigStore(COVERAGE_TEXT, clock=clock)
        signer = LinkSigner(LINK_SECRET, ttl=timedelta(hours=12), clock=clock)
        actions = MemoryActionSink()
        await actions.start()
        root = web.Application()
        root.add_subapp("/api/v1", build_operations_api(store, actions, {TOKEN: IDENTITY}, signer, clock))
        self._runner = web.AppRunner(root)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> ServedApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[ServedApi]:
    with ServedApi() as api:
        yield api


class TestOpenApiFuzz:
    @pytest.mark.timeout(120)
    def test_no_input_causes_a_server_error(self, served: ServedApi) -> None:
        """Generated valid and invalid requests to every operation, with the token, never get a 5xx."""
        base_url = f"http://127.0.0.1:{served.port}/api/v1"
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        server_errors: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

                @hypothesis.settings(
                    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def exercise(case: schemathesis.Case) -> None:
                    response = case.call(base_url=base_url, headers=AUTH, timeout=10)
                    if response.status_code >= 500:
                        server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code}")

                try:
                    exercise()
                except hypothesis.errors.Unsatisfiable:
                    # An operation without parameters or body has no invalid request to make.
                    if mode is schemathesis.GenerationMode.POSITIVE:
                        raise
        # Every operation but the document itself, which schemathesis leaves out.
        assert 13 == len(operations)
        assert [] == server_errors
