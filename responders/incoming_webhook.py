"""What every "incoming webhook" staff notifier shares (Slack, Teams Workflows).

Such a notifier POSTs one JSON body to the URL of the ``notify`` URI and reads a plain
answer: 2xx is delivered (no message id), 429 and 5xx are retried as the platform asks
(:func:`~responders.base.transient`), anything else is permanent. A subclass names its
platform and says two things: the body for a notice (:meth:`payload`) and which
permanent answers mean the webhook itself is gone, so operations must be alerted
(:meth:`permanent`). The webhook URL is a secret: it appears only as a fingerprint in
bucket keys and never in a reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import aiohttp

from .base import (
    Clock,
    Delivered,
    HttpAnswer,
    Limit,
    Outcome,
    Permanent,
    dumps,
    fingerprint,
    post,
    transient,
)
from .config import ResponderSettings
from .notice import Notice

WEBHOOK_PER_SECOND = 1.0
WEBHOOK_BURST = 3.0


class IncomingWebhookNotifier:
    """Posts a notice to an incoming-webhook URL; subclasses give the body and the permanent mapping."""

    platform: ClassVar[str]

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def payload(self, notice: Notice) -> Mapping[str, Any]:
        """The JSON body this platform expects for ``notice``."""
        raise NotImplementedError

    def permanent(self, answer: HttpAnswer) -> Permanent:
        """The outcome of a non-retryable, non-2xx answer."""
        raise NotImplementedError

    def limits(self, notice: Notice) -> Sequence[Limit]:
        return (
            Limit(f"{self.platform}:webhook:{fingerprint(notice.address)}", WEBHOOK_PER_SECOND, WEBHOOK_BURST),
        )

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        now = self._clock()
        answer = await post(
            session,
            notice.address,
            body=dumps(self.payload(notice)),
            headers={},
            settings=self._settings,
            platform=self.platform,
        )
        if not isinstance(answer, HttpAnswer):
            return answer
        if 200 <= answer.status < 300:
            return Delivered(None)
        retry = transient(answer, self.platform, now, self._settings.retry_after_max)
        if retry is not None:
            return retry
        return self.permanent(answer)
