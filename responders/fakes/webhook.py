"""A fake receiver of offhours' generic signed webhooks.

It checks ``X-Offhours-Signature`` over the raw body (401 on mismatch) and honours
``Idempotency-Key`` as the IETF draft describes: a missing key is 400, a key reused
with a different body 422, and a repeated key with the same body replays the stored
answer without counting a new delivery (``deliveries`` counts distinct ones).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from .base import FakePlatform, json_response


class FakeWebhook(FakePlatform):
    """Signed-webhook receiver at ``/hook`` sharing ``secret`` with the sender."""

    def __init__(self, secret: str, retry_after: int = 3) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.retry_after = retry_after
        self.deliveries: list[bytes] = []
        self._answers: dict[str, tuple[str, web.Response]] = {}

    @property
    def hook_url(self) -> str:
        return self.url + "/hook"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        kind = self.take_failure()
        if kind == "rate_limit":
            return json_response(
                {"title": "slow down"}, 429, {"Retry-After": str(self.retry_after)}
            )
        if kind == "server_error":
            return json_response({"title": "unavailable"}, 503)
        if kind == "permanent":
            return json_response({"title": "gone"}, 410)
        expected = "sha256=" + hmac.new(self.secret, recorded.body, hashlib.sha256).hexdigest()
        if kind == "ops_alert" or not hmac.compare_digest(
            expected, request.headers.get("X-Offhours-Signature", "")
        ):
            return json_response({"title": "bad signature"}, 401)
        key = request.headers.get("Idempotency-Key")
        if not key or not (key.startswith('"') and key.endswith('"')):
            return json_response({"title": "Idempotency-Key (a quoted string) is required"}, 400)
        digest = hashlib.sha256(recorded.body).hexdigest()
        if key in self._answers:
            seen_digest, _ = self._answers[key]
            if seen_digest != digest:
                return json_response(
                    {"title": "Idempotency-Key reused with a different payload"}, 422
                )
            return json_response({"id": f"evt_{self._index(key)}", "replayed": True})
        self.deliveries.append(recorded.body)
        answer = json_response({"id": f"evt_{len(self.deliveries)}"})
        self._answers[key] = (digest, answer)
        return answer

    def _index(self, key: str) -> int:
        return list(self._answers).index(key) + 1
