"""A fake Teams Workflows webhook: Adaptive Cards only, ``202 Accepted``."""

from __future__ import annotations

from aiohttp import web

from .base import FakePlatform, json_response, parse_json

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def _is_adaptive_card_message(body: dict[str, object] | None) -> bool:
    if body is None or body.get("type") != "message":
        return False
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return False
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            return False
        card = attachment.get("content")
        if (
            not isinstance(card, dict)
            or card.get("type") != "AdaptiveCard"
            or not card.get("version")
        ):
            return False
        if not isinstance(card.get("body"), list):
            return False
    return True


class FakeTeams(FakePlatform):
    """Workflows webhook fake at ``/workflows/<id>``."""

    def __init__(self, retry_after: int = 2) -> None:
        super().__init__()
        self.retry_after = retry_after

    @property
    def webhook_url(self) -> str:
        return self.url + "/workflows/flow-1/triggers/manual/paths/invoke?sig=s3cret"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/workflows/{flow}/triggers/manual/paths/invoke", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        kind = self.take_failure()
        if kind == "rate_limit":
            return json_response(
                {"error": {"code": "TooManyRequests"}}, 429, {"Retry-After": str(self.retry_after)}
            )
        if kind == "server_error":
            return json_response({"error": {"code": "BadGateway"}}, 502)
        if kind == "permanent":
            return json_response({"error": {"code": "InvalidRequestContent"}}, 400)
        if kind == "ops_alert" or request.query.get("sig") != "s3cret":
            return json_response({"error": {"code": "DirectApiAuthorizationRequired"}}, 401)
        if not _is_adaptive_card_message(parse_json(recorded.body)):
            return json_response(
                {"error": {"code": "InvalidRequestContent", "message": "Adaptive Card expected"}},
                400,
            )
        return web.Response(status=202)
