"""The common machinery of the fake platforms: serve, record, fail on request."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import orjson
from aiohttp import web

FailureKind = Literal["rate_limit", "server_error", "permanent", "ops_alert"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("rate_limit", "server_error", "permanent", "ops_alert")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def parse_json(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class FakePlatform:
    """A real aiohttp server on 127.0.0.1 (free port) that records every request.

    Subclasses add their routes in :meth:`add_routes`; their handlers call
    :meth:`record` first and answer :meth:`failure` when one is queued.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._failures: deque[FailureKind] = deque()
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` — the base URL to configure the adapter with."""
        if self.port is None:
            raise RuntimeError("fake platform not started")
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fail_next(self, kind: FailureKind, times: int = 1) -> None:
        """Answer the next ``times`` requests with this platform's ``kind`` of error."""
        self._failures.extend([kind] * times)

    async def record(self, request: web.Request) -> Recorded:
        recorded = Recorded(
            request.method, request.path, dict(request.headers), await request.read()
        )
        async with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()
        return recorded

    def take_failure(self) -> FailureKind | None:
        return self._failures.popleft() if self._failures else None

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Wait until at least ``count`` requests arrived; return them all."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.requests) >= count), timeout
            )
            return list(self.requests)

    async def start(self) -> FakePlatform:
        app = web.Application()
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePlatform:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
