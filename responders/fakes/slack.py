"""A fake Slack incoming webhook: ``POST /services/T…/B…/secret`` answers ``ok``."""

from __future__ import annotations

from aiohttp import web

from .base import FakePlatform, parse_json


class FakeSlack(FakePlatform):
    """Incoming-webhook fake; ``path`` is the one webhook it knows (others: 404 no_service)."""

    def __init__(self, path: str = "/services/T1/B1/abc", retry_after: int = 1) -> None:
        super().__init__()
        self.path = path
        self.retry_after = retry_after

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/services/{team}/{bot}/{secret}", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        kind = self.take_failure()
        if kind == "rate_limit":
            return web.Response(
                status=429, text="rate_limited", headers={"Retry-After": str(self.retry_after)}
            )
        if kind == "server_error":
            return web.Response(status=500, text="rollup_error")
        if kind == "permanent":
            return web.Response(status=400, text="user_not_found")
        if kind == "ops_alert":
            return web.Response(status=410, text="channel_is_archived")
        if request.path != self.path:
            return web.Response(status=404, text="no_service")
        body = parse_json(recorded.body)
        if body is None:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body.get("text"), str) or not body["text"]:
            return web.Response(status=400, text="no_text")
        blocks = body.get("blocks")
        if blocks is not None and not (
            isinstance(blocks, list) and all(isinstance(b, dict) and "type" in b for b in blocks)
        ):
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(status=200, text="ok")
