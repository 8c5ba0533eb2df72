"""The delivery loop and responders wired to a fake Chatwoot desk, as the outboxes wire them.

Shared by the desk delivery and handover tests: one attempt budget (3), no real sleeping
between attempts, dead letters (and, when asked, failed acknowledgments handed to staff)
collected for the test to read.
"""

from __future__ import annotations

import dataclasses

import aiohttp

from records.wire import AckRequest
from responders.base import Clock
from responders.buckets import TokenBuckets
from responders.config import ResponderSettings
from responders.delivery import DeliveryLoop, MemoryLedger, Responders, RetryPolicy
from responders.fakes.chatwoot import FakeChatwoot
from responders.registry import build_registry


@dataclasses.dataclass
class Harness:
    responders: Responders
    ledger: MemoryLedger
    dead_letters: list[tuple[bytes, str, str]]
    escalations: list[tuple[AckRequest, str]]


def desk_harness(
    fake: FakeChatwoot, session: aiohttp.ClientSession, *, token: str, signing: str, clock: Clock,
    ledger: MemoryLedger | None = None, escalate: bool = True,
) -> Harness:
    """Responders on ``fake``; ``escalate``: failed acknowledgments are handed to staff (collected)."""
    settings = ResponderSettings(
        chatwoot_url=fake.url, chatwoot_token=token, egress_allow=("127.0.0.1",), signing_secret=signing,
        max_attempts=3, backoff_base=0.01, http_timeout=5.0,
    )
    dead: list[tuple[bytes, str, str]] = []
    escalations: list[tuple[AckRequest, str]] = []

    async def dead_letter(raw: bytes, source: str, reason: str) -> None:
        dead.append((raw, source, reason))

    async def to_staff(request: AckRequest, reason: str) -> None:
        escalations.append((request, reason))

    async def no_sleep(seconds: float) -> None:
        return None

    ledger = ledger or MemoryLedger()
    loop = DeliveryLoop(ledger=ledger, policy=RetryPolicy.from_settings(settings), buckets=TokenBuckets(clock),
                        sleep=no_sleep, jitter=lambda: 0.0)
    responders = Responders(registry=build_registry(settings, clock), loop=loop, session=session, clock=clock,
                            dead_letter=dead_letter, **({"escalate": to_staff} if escalate else {}))
    return Harness(responders, ledger, dead, escalations)
