"""Settings of the HTTP edge (webhook secrets, account mapping, ingest limits).

A plain pydantic model nested in ``streams.settings.Settings`` as ``edge``;
environment variables use the ``OFFHOURS_EDGE__`` prefix (e.g.
``OFFHOURS_EDGE__META_APP_SECRET``, ``OFFHOURS_EDGE__ACCOUNTS='{"PAGE_111": "acme.it.facebook"}'``).

Secrets are :class:`pydantic.SecretStr`: their ``repr`` and ``str`` print ``**********``,
so a logged settings object never shows them. A webhook whose secret is not configured
answers ``503`` (the platform keeps retrying and nothing is lost while the
configuration is fixed) instead of accepting unverified payloads.
"""

from __future__ import annotations

from datetime import timedelta

from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

MIB = 1024 * 1024


class EdgeSettings(BaseModel):
    """Everything the webhook ingest needs: secrets, limits and the account mapping.

    ``accounts`` maps a platform identifier to the coverage ``account`` name of
    CONTRACT §1: a Facebook page id, an Instagram account id, a WhatsApp
    ``phone_number_id``, an X ``for_user_id`` or a Telegram bot name. A key may be
    qualified by the event id prefix of its channel (``fb:``, ``ig:``, ``wa:``, ``x:``,
    ``tg:``) when two platforms could share an identifier; the qualified key wins.
    An identifier missing from the map is used as the account as it is, so the
    triage rejects the event to the dead-letter topic with the reason (nothing lost).
    """

    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    meta_app_id: str | None = Field(
        default=None,
        description="our Meta app id: Messenger echoes sent by this app (our own "
        "acknowledgments) are skipped, echoes of staff replies become agent_reply",
    )
    x_consumer_secret: SecretStr | None = None
    x_app_id: str | None = Field(
        default=None,
        description="our X app id: DMs sent by this app (our own acknowledgments) are "
        "skipped, other DMs from the brand account become agent_reply",
    )
    telegram_secret_token: SecretStr | None = None
    telegram_bot: str = Field(
        default="bot", min_length=1, description="the bot's username, used in conversations"
    )
    telegram_bot_account: str | None = Field(
        default=None,
        description="coverage account of the bot; unset looks telegram_bot up in accounts",
    )
    generic_secret: SecretStr | None = None
    max_body_bytes: int = Field(default=MIB, gt=0)
    dedupe_ttl: timedelta = Field(
        default=timedelta(hours=48),
        gt=timedelta(0),
        description="how long a produced event id is remembered: seconds, HH:MM:SS or ISO "
        "8601 (PT48H); Meta retries for up to about 36 h",
    )
    dedupe_capacity: int = Field(default=100_000, gt=0)
    accounts: dict[str, str] = Field(default_factory=dict)

    @field_validator("dedupe_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # Environment variables are text; "3600" means seconds, as a number would.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value
