"""Settings of the HTTP edge (webhook secrets, account mapping, ingest limits).

A plain pydantic model nested in ``streams.settings.Settings`` as ``edge``;
environment variables use the ``OFFHOURS_EDGE__`` prefix (e.g.
``OFFHOURS_EDGE__META_APP_SECRET``, ``OFFHOURS_EDGE__ACCOUNTS='{"PAGE_111": "acme.it.facebook"}'``).

Secrets are :class:`pydantic.SecretStr`: their ``repr`` and ``str`` print ``**********``,
so a logged settings object never shows them. A webhook whose secret is not configured
answers ``503`` naming the variable to set (the platform keeps retrying and nothing is
lost while the configuration is fixed) instead of accepting unverified payloads;
``edge.capabilities`` holds which variable turns on which webhook.

A secret that is set must be worth checking: an empty one would let anyone sign with
the empty key, a short one be guessed. Every secret needs at least
:data:`MIN_SECRET_CHARS` characters (platform-issued ones are longer: a Meta app secret
has 32 hex digits, an X consumer secret 50 characters), the Telegram secret token also
Telegram's alphabet and at most 256 characters. The error names the environment
variable and never shows the value.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from records.wire import MAX_EVENT_BYTES, MAX_TEXT_CHARS

MIB = 1024 * 1024

MIN_SECRET_CHARS = 16
"""The shortest secret accepted for a webhook secret, verify token or link secret."""

ENV_PREFIX = "OFFHOURS_EDGE__"
_TELEGRAM_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_DESK_SENDER = re.compile(r"(user|agent_bot):[1-9][0-9]{0,18}")
_MAKE_ONE = "e.g. the output of `openssl rand -hex 32`"


def check_secret(value: SecretStr | None, variable: str, *, made_by_us: bool = True) -> SecretStr | None:
    """``value`` when it is unset or at least :data:`MIN_SECRET_CHARS` non-blank characters.

    Raises :class:`ValueError` naming ``variable`` (never the value). ``made_by_us``
    says the operator chooses the secret (suggest how to make one) rather than copying
    it from a platform's console.
    """
    if value is None:
        return None
    secret = value.get_secret_value()
    hint = _MAKE_ONE if made_by_us else "copy it whole from the platform's console"
    if not secret.strip():
        raise ValueError(
            f"{variable} is set but empty: set a secret of at least {MIN_SECRET_CHARS} characters "
            f"({hint}), or unset the variable"
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"{variable} is too short: at least {MIN_SECRET_CHARS} characters are needed ({hint})")
    return value


class EdgeSettings(BaseModel):
    """Everything the webhook ingest needs: secrets, limits and the account mapping.

    ``accounts`` maps a platform identifier to an ``account`` name of the coverage
    file (README: The coverage file): a Facebook page id, an Instagram account id, a WhatsApp
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
    chatwoot_webhook_secret: SecretStr | None = Field(
        default=None,
        description="the secret Chatwoot shows for the account webhook pointed at /webhooks/chatwoot "
        "(X-Chatwoot-Signature; Chatwoot 4.11.2 or later signs its webhooks)",
    )
    chatwoot_own_senders: list[str] = Field(
        default_factory=list,
        description="the desk identities offhours posts as, 'user:<id>' (the user whose access token it "
        "uses) or 'agent_bot:<id>': their outgoing messages are offhours' own, never a staff reply",
    )
    max_body_bytes: int = Field(default=MIB, gt=0)
    max_text_chars: int = Field(
        default=MAX_TEXT_CHARS,
        gt=0,
        le=MAX_TEXT_CHARS,
        description="longest message text produced; a longer item is skipped with the reason "
        "(no platform sends longer than 10,000: Messenger 2,000, WhatsApp and Telegram 4,096, "
        "X DMs 10,000); at most what the triage worker accepts",
    )
    max_event_bytes: int = Field(
        default=MAX_EVENT_BYTES,
        gt=0,
        le=MAX_EVENT_BYTES,
        description="largest event produced, as JSON bytes; a larger item is skipped with the "
        "reason; at most what the triage worker accepts (64 KiB), far below Kafka's 1 MiB",
    )
    dedupe_ttl: timedelta = Field(
        default=timedelta(hours=48),
        gt=timedelta(0),
        description="how long a produced event id is remembered: seconds, HH:MM:SS or ISO "
        "8601 (PT48H); Meta retries for up to about 36 h",
    )
    dedupe_capacity: int = Field(default=100_000, gt=0)
    rate_per_second: float = Field(
        default=200.0,
        ge=0,
        description="webhook requests per second allowed per client address on average "
        "(beyond: 429 with Retry-After); 0 turns the limit off",
    )
    rate_burst: int = Field(default=400, ge=1, description="webhook requests an address may make at once")
    accounts: dict[str, str] = Field(default_factory=dict)

    # A refused secret must not reach an error message, however the settings are built.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("meta_app_secret", "x_consumer_secret", "chatwoot_webhook_secret")
    @classmethod
    def _platform_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return check_secret(value, ENV_PREFIX + str(info.field_name).upper(), made_by_us=False)

    @field_validator("meta_verify_token", "generic_secret")
    @classmethod
    def _our_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return check_secret(value, ENV_PREFIX + str(info.field_name).upper())

    @field_validator("telegram_secret_token")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        variable = ENV_PREFIX + "TELEGRAM_SECRET_TOKEN"
        value = check_secret(value, variable)
        if value is not None and not _TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                f"{variable} must be at most 256 characters of A-Z a-z 0-9 _ - (what Telegram's "
                "setWebhook accepts as secret_token)"
            )
        return value

    @field_validator("chatwoot_own_senders")
    @classmethod
    def _desk_senders(cls, value: list[str]) -> list[str]:
        for sender in value:
            if not _DESK_SENDER.fullmatch(sender):
                raise ValueError(
                    f"{ENV_PREFIX}CHATWOOT_OWN_SENDERS: {sender[:40]!r} is not 'user:<id>' or 'agent_bot:<id>' "
                    "(e.g. '[\"agent_bot:3\"]', the id Chatwoot shows for the bot or the user)"
                )
        return value

    @field_validator("dedupe_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # Environment variables are text; "3600" means seconds, as a number would.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value
