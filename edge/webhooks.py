"""The webhook routes: verify, normalize, dedupe, publish, answer.

Every POST follows the same order, so that nothing unverified is ever parsed or
produced:

1. read the **raw** body, bounded by ``max_body_bytes`` (more: ``413``);
2. check the platform's signature over those bytes (header missing: ``401``, wrong:
   ``403``; the secret not configured: ``503`` naming the variable to set, so the
   platform retries until it is);
3. parse the JSON (malformed: ``400`` with the reason) and normalize it (a payload that
   is not the platform's shape: ``400``; single items that are malformed, carry no
   message, hold odd values (a time outside 2000-2100, a number beyond 64 bits) or are
   over a limit (``max_text_chars``, ``max_event_bytes``) are skipped and listed in the
   answer). A correctly signed body never gets a 5xx for its content;
4. drop the events this replica produced within ``dedupe_ttl`` (see :mod:`edge.dedupe`),
   and a whole delivery whose id it has seen (Chatwoot's ``X-Chatwoot-Delivery``);
5. publish the rest through the :class:`~edge.sink.EventSink`, then record the staff
   actions a care desk reported through the :class:`~edge.actions.ActionSink` (a
   failure: ``503``, and the ids are forgotten by the dedupe so the retry produces them);
6. answer ``200`` with ``{"produced", "duplicates", "skipped": [{"ref", "reason"}]}``
   (Chatwoot's also with ``"recorded"``, the actions recorded).

Routes: ``GET/POST /webhooks/meta`` (Messenger, Instagram and WhatsApp share the
handshake and the ``X-Hub-Signature-256``), ``GET/POST /webhooks/x`` (CRC and
``x-twitter-webhooks-signature``), ``POST /webhooks/telegram``
(``X-Telegram-Bot-Api-Secret-Token``), ``POST /webhooks/generic``
(``X-Offhours-Signature: sha256=<hex>``; the body is events (README: Events), all or none)
and ``POST /webhooks/chatwoot`` (a Chatwoot desk's account webhook:
``X-Chatwoot-Signature`` over ``X-Chatwoot-Timestamp`` and the body, refused when the
timestamp is over 300 s from the clock; :mod:`edge.normalize.chatwoot`). Every route
answers from memory and the broker only, well within Chatwoot's 5 s delivery timeout.
Error answers are ``{"error": reason}``; no reason ever contains a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from edge import capabilities, signatures
from edge.actions import ActionSink
from edge.capabilities import Setting
from edge.config import EdgeSettings
from edge.dedupe import RecentIds
from edge.normalize import (
    InvalidPayload,
    Limits,
    Normalized,
    Skipped,
    chatwoot,
    generic,
    meta,
    shown,
    telegram,
    whatsapp,
    x,
)
from edge.ratelog import RateLimitedLog
from edge.signatures import Verdict
from edge.sink import EventSink
from records.wire import SocialEvent
from schedules import Coverage

log = logging.getLogger(__name__)

META_SIGNATURE = "X-Hub-Signature-256"
X_SIGNATURE = "x-twitter-webhooks-signature"
TELEGRAM_SECRET = "X-Telegram-Bot-Api-Secret-Token"
GENERIC_SIGNATURE = "X-Offhours-Signature"
CHATWOOT_SIGNATURE = "X-Chatwoot-Signature"
CHATWOOT_TIMESTAMP = "X-Chatwoot-Timestamp"
CHATWOOT_DELIVERY = "X-Chatwoot-Delivery"
_CHUNK = 64 * 1024
REFUSAL_LOG_INTERVAL = 60.0
"""Seconds between two log lines about refused requests of one webhook (the rest are counted)."""


@dataclass
class IngestStats:
    """Counters of one ingest app since it started (for metrics and the operations API)."""

    produced: int = 0
    duplicates: int = 0
    skipped: int = 0
    refused: int = 0
    unknown_accounts: int = 0
    recorded: int = 0


class WebhookIngest:
    """What the webhook handlers share: settings, sink, the dedupe memory and the clock.

    ``coverage`` gives the coverage in force (None before one is known) and ``actions``
    where a care desk's staff actions go (claims, answered); without them the Chatwoot
    webhook skips those, with the reason.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        sink: EventSink,
        recent: RecentIds,
        now: Callable[[], datetime],
        *,
        on_produced: Callable[[Sequence[SocialEvent]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        known_account: Callable[[str], bool | None] | None = None,
        coverage: Callable[[], Coverage | None] | None = None,
        actions: ActionSink | None = None,
    ) -> None:
        self.settings = settings
        self.known_account = known_account
        self.coverage = coverage
        self.actions = actions
        self.refusals = RateLimitedLog(log, REFUSAL_LOG_INTERVAL, clock)
        self.on_produced = on_produced
        self.sink = sink
        self.recent = recent
        self.now = now
        self.stats = IngestStats()
        self.limits = Limits(max_text_chars=settings.max_text_chars, max_event_bytes=settings.max_event_bytes)
        self._known_accounts = set(settings.accounts.values()) | (
            {settings.telegram_bot_account} if settings.telegram_bot_account else set()
        )

    async def read_body(self, request: web.Request) -> bytes:
        """The raw body, refused with 413 beyond ``max_body_bytes`` (before reading it all)."""
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(limit, request.content_length)
        body = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise _too_large(limit, len(body))
        return bytes(body)

    def check(self, name: str, verdict: Verdict) -> None:
        """Raise the refusal for a signature that is not valid (nothing is produced)."""
        if verdict is Verdict.VALID:
            return
        self.stats.refused += 1
        if verdict is Verdict.MISSING:
            self.refusals.warning(name, "%s webhook refused: signature missing", name)
            raise _error(web.HTTPUnauthorized, f"{name} signature missing")
        if verdict is Verdict.STALE:
            self.refusals.warning(name, "%s webhook refused: signed timestamp too far from the clock", name)
            raise _error(
                web.HTTPUnauthorized,
                f"{name} signature timestamp is more than {signatures.CHATWOOT_TOLERANCE} s from this "
                "server's clock: a replayed delivery, or a clock to set right",
            )
        self.refusals.warning(name, "%s webhook refused: signature does not match", name)
        raise _error(web.HTTPForbidden, f"{name} signature does not match")

    async def accept(self, name: str, normalized: Normalized, *, delivery: str | None = None) -> web.Response:
        """Dedupe and publish the events of one request, record its staff actions, and answer
        with what happened. ``delivery``: the platform's id of the delivery, the same on
        its retries; a delivery seen within ``dedupe_ttl`` produces nothing again."""
        skipped = list(normalized.skipped)
        actions = list(normalized.actions)
        if actions and self.actions is None:
            skipped += [Skipped(ref=a.conversation, reason=f"{a.action}: no action sink here to record it")
                        for a in actions]
            actions = []
        delivery_key = f"delivery:{name}:{delivery}" if delivery else None
        if delivery_key is not None and not self.recent.claim([delivery_key]):
            duplicates = len(normalized.events) + len(actions)
            self._count(name, [], duplicates, normalized)
            return self._answer(name, 0, duplicates, skipped, 0)
        fresh_events = set(self.recent.claim(event.id for event in normalized.events))
        fresh_actions = set(self.recent.claim(a.action_id for a in actions if a.action_id))
        fresh = fresh_events | fresh_actions | ({delivery_key} if delivery_key else set())
        events = [event for event in normalized.events if event.id in fresh_events]
        offered = len(actions)
        actions = [a for a in actions if not a.action_id or a.action_id in fresh_actions]
        duplicates = len(normalized.events) - len(events) + offered - len(actions)
        if events:
            try:
                await self.sink.publish(events)
            except Exception as exc:
                self.recent.release(fresh)
                log.error("%s webhook: publishing %d events failed: %r", name, len(events), exc)
                raise _error(web.HTTPServiceUnavailable, "events could not be stored, retry") from None
        if actions:
            assert self.actions is not None
            try:
                for action in actions:
                    await self.actions.record(action)
            except Exception as exc:
                self.recent.release(fresh)
                log.error("%s webhook: recording %d actions failed: %r", name, len(actions), exc)
                raise _error(web.HTTPServiceUnavailable, "actions could not be stored, retry") from None
        self.stats.recorded += len(actions)
        self._count(name, events, duplicates, normalized)
        if events and self.on_produced is not None:
            self.on_produced(events)
        return self._answer(name, len(events), duplicates, skipped, len(actions))

    @staticmethod
    def _answer(name: str, produced: int, duplicates: int, skipped: list[Skipped], recorded: int) -> web.Response:
        answer: dict[str, Any] = {
            "produced": produced,
            "duplicates": duplicates,
            "skipped": [{"ref": s.ref, "reason": s.reason} for s in skipped],
        }
        if name == "chatwoot":
            answer["recorded"] = recorded
        return web.json_response(answer)

    def _unknown_account(self, name: str, account: str) -> bool:
        """Whether no team will answer ``account`` (the triage will reject its events).

        Asked of the coverage in force (``known_account``) when the ingest has one.
        Without it only the platform webhooks can tell: their account is the
        ``accounts`` mapping's value for the platform's id, so an id the mapping lacks
        is unknown. The generic webhook's events name their coverage account
        themselves, whatever their channel: without the coverage nothing is known of it.
        """
        if self.known_account is not None:
            known = self.known_account(account)
            if known is not None:
                return not known
        # The generic and Chatwoot webhooks' events name their coverage account themselves.
        return name not in ("generic", "chatwoot") and account not in self._known_accounts

    def _count(self, name: str, events: list[SocialEvent], duplicates: int, normalized: Normalized) -> None:
        self.stats.produced += len(events)
        self.stats.duplicates += duplicates
        self.stats.skipped += len(normalized.skipped)
        for event in events:
            if self._unknown_account(name, event.account):
                # Produced anyway: the triage rejects it to the dead letters with the reason.
                self.stats.unknown_accounts += 1
                log.warning(
                    "%s webhook: no coverage account for %s (event %s)",
                    name, shown(event.account, 80), shown(event.id, 80),
                )
        for skipped in normalized.skipped:
            log.debug("%s webhook: skipped %s: %s", name, shown(skipped.ref, 120), shown(skipped.reason, 300))
        log.info(
            "%s webhook: produced %d, duplicates %d, skipped %d",
            name, len(events), duplicates, len(normalized.skipped),
        )


INGEST = web.AppKey("offhours_webhook_ingest", WebhookIngest)


def _error(kind: type[web.HTTPException], reason: str) -> web.HTTPException:
    return kind(text=orjson.dumps({"error": reason}).decode(), content_type="application/json")


def _too_large(limit: int, size: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=size,
        text=orjson.dumps({"error": f"body larger than {limit} bytes"}).decode(),
        content_type="application/json",
    )


def _secret(settings: EdgeSettings, name: str, setting: Setting | None = None) -> str:
    """The secret of webhook ``name`` (:data:`edge.capabilities.WEBHOOK_SECRETS`, or ``setting``),
    else ``503`` naming the variable to set."""
    setting = setting or capabilities.WEBHOOK_SECRETS[name]
    value: SecretStr | None = getattr(settings, setting.path[-1])
    if value is None:
        # The variable's name is no secret; it tells the operator what to set.
        raise _error(web.HTTPServiceUnavailable, f"{name} webhooks are not configured: set {setting.env}")
    return value.get_secret_value()


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _error(web.HTTPBadRequest, f"malformed JSON: {exc}") from None


async def meta_handshake(request: web.Request) -> web.Response:
    """Meta's subscription check: echo ``hub.challenge`` raw when the verify token matches."""
    ingest = request.app[INGEST]
    expected = _secret(ingest.settings, "meta", capabilities.META_VERIFY_TOKEN)
    query = request.query
    matches = signatures.tokens_match(expected, query.get("hub.verify_token", ""))
    if query.get("hub.mode") != "subscribe" or not matches:
        ingest.stats.refused += 1
        ingest.refusals.warning("meta", "meta webhook handshake refused: hub.mode or hub.verify_token")
        raise _error(web.HTTPForbidden, "hub.mode is not subscribe or hub.verify_token does not match")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise _error(web.HTTPBadRequest, "hub.challenge missing")
    return web.Response(text=challenge, content_type="text/plain")


async def meta_post(request: web.Request) -> web.Response:
    """Messenger, Instagram and WhatsApp payloads, told apart by their ``object``."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "meta")
    body = await ingest.read_body(request)
    ingest.check("meta", signatures.verify_meta(secret, body, request.headers.get(META_SIGNATURE)))
    payload = _json(body)
    settings = ingest.settings
    try:
        kind = payload.get("object") if isinstance(payload, dict) else None
        if isinstance(payload, dict) and not isinstance(kind, str | None):
            raise InvalidPayload(f"object is not a string: {shown(kind)}")
        if kind == "whatsapp_business_account":
            normalized = whatsapp.normalize(
                payload, settings.accounts, received_at=ingest.now(), limits=ingest.limits
            )
        elif kind in meta.CHANNELS:
            normalized = meta.normalize(
                payload,
                settings.accounts,
                received_at=ingest.now(),
                app_id=settings.meta_app_id,
                limits=ingest.limits,
            )
        elif isinstance(payload, dict):
            # Another subscription of the app (permissions, user...): nothing for us, and
            # an error would make Meta retry it for hours.
            normalized = Normalized(skipped=[_skip_object(kind)])
        else:
            raise InvalidPayload(f"expected a JSON object, got {type(payload).__name__}")
    except InvalidPayload as exc:
        raise _error(web.HTTPBadRequest, exc.reason) from None
    return await ingest.accept("meta", normalized)


def _skip_object(kind: Any) -> Skipped:
    return Skipped(ref="object", reason=f"object {shown(kind)} carries no customer message")


async def x_crc(request: web.Request) -> web.Response:
    """X's challenge-response check: ``{"response_token": "sha256=<base64 HMAC>"}``."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "x")
    token = request.query.get("crc_token")
    if not token:
        raise _error(web.HTTPBadRequest, "crc_token missing")
    if not signatures.is_crc_token(token):
        # Signing any text would make this route an oracle for forged POST bodies.
        ingest.stats.refused += 1
        ingest.refusals.warning("x", "x webhook CRC refused: crc_token not of X's shape")
        raise _error(
            web.HTTPBadRequest,
            f"crc_token is not an X CRC token: 1 to {signatures.MAX_CRC_TOKEN_CHARS} characters "
            "of A-Z a-z 0-9 + / = _ - expected",
        )
    return web.json_response(signatures.x_crc_response(secret, token))


async def x_post(request: web.Request) -> web.Response:
    """Account Activity API payloads."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "x")
    body = await ingest.read_body(request)
    ingest.check("x", signatures.verify_x(secret, body, request.headers.get(X_SIGNATURE)))
    settings = ingest.settings
    try:
        normalized = x.normalize(
            _json(body),
            settings.accounts,
            received_at=ingest.now(),
            app_id=settings.x_app_id,
            limits=ingest.limits,
        )
    except InvalidPayload as exc:
        raise _error(web.HTTPBadRequest, exc.reason) from None
    return await ingest.accept("x", normalized)


async def telegram_post(request: web.Request) -> web.Response:
    """Bot API updates (the secret token header is Telegram's only authentication)."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "telegram")
    ingest.check("telegram", signatures.verify_telegram(secret, request.headers.get(TELEGRAM_SECRET)))
    body = await ingest.read_body(request)
    settings = ingest.settings
    try:
        normalized = telegram.normalize(
            _json(body),
            settings.accounts,
            received_at=ingest.now(),
            bot=settings.telegram_bot,
            account=settings.telegram_bot_account,
            limits=ingest.limits,
        )
    except InvalidPayload as exc:
        raise _error(web.HTTPBadRequest, exc.reason) from None
    return await ingest.accept("telegram", normalized)


async def generic_post(request: web.Request) -> web.Response:
    """Events (README: Events) from our own producers (a CRM, a test); all valid or none produced."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "generic")
    body = await ingest.read_body(request)
    ingest.check("generic", signatures.verify_generic(secret, body, request.headers.get(GENERIC_SIGNATURE)))
    try:
        normalized = generic.normalize(_json(body), limits=ingest.limits)
    except InvalidPayload as exc:
        raise _error(web.HTTPBadRequest, exc.reason) from None
    if normalized.skipped:
        reasons = "; ".join(f"{s.ref} {s.reason}" for s in normalized.skipped)
        raise _error(web.HTTPBadRequest, f"invalid events, none produced: {reasons}")
    return await ingest.accept("generic", normalized)


async def chatwoot_post(request: web.Request) -> web.Response:
    """A Chatwoot desk's account webhook: customer messages, staff replies, assignments, resolutions."""
    ingest = request.app[INGEST]
    secret = _secret(ingest.settings, "chatwoot")
    body = await ingest.read_body(request)
    headers = request.headers
    ingest.check("chatwoot", signatures.verify_chatwoot(
        secret, body, headers.get(CHATWOOT_SIGNATURE), headers.get(CHATWOOT_TIMESTAMP),
        lambda: ingest.now().timestamp(),
    ))
    payload = _json(body)
    delivery = headers.get(CHATWOOT_DELIVERY, "").strip()[:64] or None
    try:
        normalized = chatwoot.normalize(
            payload,
            received_at=ingest.now(),
            coverage=ingest.coverage() if ingest.coverage is not None else None,
            delivery=delivery,
            own_senders=ingest.settings.chatwoot_own_senders,
            limits=ingest.limits,
        )
    except InvalidPayload as exc:
        raise _error(web.HTTPBadRequest, exc.reason) from None
    return await ingest.accept("chatwoot", normalized, delivery=delivery)


def add_routes(app: web.Application, prefix: str = "/webhooks") -> None:
    """Register the webhook routes under ``prefix`` on ``app`` (which must hold :data:`INGEST`)."""
    app.router.add_get(f"{prefix}/meta", meta_handshake, allow_head=False)
    app.router.add_post(f"{prefix}/meta", meta_post)
    app.router.add_get(f"{prefix}/x", x_crc, allow_head=False)
    app.router.add_post(f"{prefix}/x", x_post)
    app.router.add_post(f"{prefix}/telegram", telegram_post)
    app.router.add_post(f"{prefix}/generic", generic_post)
    app.router.add_post(f"{prefix}/chatwoot", chatwoot_post)
