"""Settings of the responders (platform credentials, endpoints, delivery policy).

A plain pydantic model nested in ``streams.settings.Settings`` as ``responders``;
environment variables use the ``OFFHOURS_RESPONDERS__`` prefix, e.g.
``OFFHOURS_RESPONDERS__SMTP_HOST=mail.example``; account names contain dots, so
``accounts`` is given as JSON:
``OFFHOURS_RESPONDERS__ACCOUNTS='{"acme.it.facebook": {"page_id": "111",
"access_token_file": "/run/secrets/fb"}}'``.

Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in logs, reprs
and error texts. Every ``*_file`` field names a file whose content (stripped) is read
once, when the settings are built at start, into the matching secret field; a
missing file is an error naming the path, never the content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from .egress import parse_allow


def _read_secret_files(model: BaseModel, pairs: tuple[tuple[str, str], ...]) -> None:
    """Fill each empty secret field from its ``*_file`` companion, when one is given."""
    for secret_field, file_field in pairs:
        path: Path | None = getattr(model, file_field)
        if path is None or getattr(model, secret_field) is not None:
            continue
        try:
            content = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{file_field}: cannot read {path} ({exc.strerror})") from None
        object.__setattr__(model, secret_field, SecretStr(content))


class AccountCredentials(BaseModel):
    """How to answer as one social account (a key of the coverage file's ``accounts``).

    Which fields matter depends on the channel: ``page_id`` (Messenger/Instagram; ``me``
    when unset), ``phone_number_id`` (WhatsApp), ``access_token`` (Graph page or system
    user token, X OAuth 2 user token, Telegram bot token), ``webhook_url`` and
    ``signing_secret`` (the generic webhook channel).
    """

    model_config = {"frozen": True}

    page_id: str | None = None
    phone_number_id: str | None = None
    access_token: SecretStr | None = None
    access_token_file: Path | None = None
    webhook_url: str | None = None
    signing_secret: SecretStr | None = None
    signing_secret_file: Path | None = None

    @model_validator(mode="after")
    def _secret_files(self) -> AccountCredentials:
        _read_secret_files(
            self,
            (("access_token", "access_token_file"), ("signing_secret", "signing_secret_file")),
        )
        return self


class ResponderSettings(BaseModel):
    """Endpoints, credentials and the delivery policy of the responders.

    Base URLs and the Graph API version are settings so that tests and staging point
    them at local fakes; such local destinations must also be in ``egress_allow``
    (:mod:`responders.egress`). Retry bounds: at most ``max_attempts`` sends per delivery,
    exponential backoff from ``backoff_base`` doubling up to ``backoff_max`` seconds
    (with jitter), and a platform's requested wait (Retry-After and equivalents)
    clamped to ``retry_after_max`` seconds.
    """

    model_config = {"frozen": True}

    graph_base_url: str = "https://graph.facebook.com"
    graph_version: str = "v25.0"
    x_base_url: str = "https://api.x.com"
    telegram_base_url: str = "https://api.telegram.org"

    accounts: dict[str, AccountCredentials] = Field(default_factory=dict)

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "offhours@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=20.0, gt=0)

    signing_secret: SecretStr | None = None
    signing_secret_file: Path | None = None
    telegram_notify_token: SecretStr | None = None
    telegram_notify_token_file: Path | None = None

    chatwoot_url: str | None = Field(
        default=None,
        description="base URL of the Chatwoot install the teams answer through "
        "(e.g. https://desk.example.com); unset, no desk is used",
    )
    chatwoot_token: SecretStr | None = Field(
        default=None,
        description="the api_access_token offhours acts with in Chatwoot: a user's access token "
        "(Profile settings > Access token) of an administrator, or of an agent who is a member "
        "of every inbox offhours manages; an agent bot's token cannot read messages or set labels",
    )
    chatwoot_token_file: Path | None = None

    deliver: bool = Field(
        default=True,
        description="run the acks and routes outboxes against the platforms; "
        "off (replay, dry runs) the outbox records are written but nothing is sent",
    )
    concurrency: int = Field(
        default=16, ge=1, le=256,
        description="deliveries in flight at once per worker, for each outbox (acks, routes); "
        "one slow platform or a retry wait then holds back one of them, not the whole outbox",
    )
    egress_allow: tuple[str, ...] = Field(
        default=(),
        description="local or internal destinations the responders may call: host names, "
        "IP addresses or CIDR blocks, each optionally with :port (e.g. "
        '["127.0.0.1", "10.20.0.0/16", "pager.internal:8443"]); everything else must be '
        "https to a public address (see responders.egress)",
    )
    http_timeout: float = Field(default=10.0, gt=0, description="seconds per HTTP send")
    max_attempts: int = Field(default=5, ge=1)
    backoff_base: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=120.0, gt=0)
    retry_after_max: float = Field(default=900.0, gt=0)

    @field_validator("chatwoot_url")
    @classmethod
    def _valid_chatwoot_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip().rstrip("/")
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http") or not rest or "/" in rest or "?" in rest or "@" in rest:
            raise ValueError(
                "OFFHOURS_RESPONDERS__CHATWOOT_URL must be the install's base URL, "
                "https://host[:port] (http only to a host in egress_allow), without a path"
            )
        return url

    @field_validator("chatwoot_token")
    @classmethod
    def _nonempty_chatwoot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(
                "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN is set but empty: copy the access token "
                "from the Chatwoot user's profile settings, or unset the variable"
            )
        return value

    @field_validator("egress_allow")
    @classmethod
    def _valid_allow(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_allow(value)
        return value

    @model_validator(mode="after")
    def _secret_files(self) -> ResponderSettings:
        _read_secret_files(
            self,
            (
                ("smtp_password", "smtp_password_file"),
                ("signing_secret", "signing_secret_file"),
                ("telegram_notify_token", "telegram_notify_token_file"),
                ("chatwoot_token", "chatwoot_token_file"),
            ),
        )
        token = self.chatwoot_token
        if token is not None and not token.get_secret_value().strip():
            raise ValueError(
                "chatwoot_token_file: the file is empty: put the Chatwoot user's access token in it"
            )
        return self

    def account(self, name: str) -> AccountCredentials | None:
        """The credentials of one account, or None when it is not configured."""
        return self.accounts.get(name)

    def graph_url(self, *path: Any) -> str:
        """A Graph API URL: base, version, then the path segments."""
        return "/".join([self.graph_base_url.rstrip("/"), self.graph_version, *map(str, path)])
