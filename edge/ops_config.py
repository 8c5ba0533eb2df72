"""Settings of the operations API and of the on-call action links.

A plain pydantic model, meant to be nested in ``streams.settings.Settings`` (as
``ops``, so environment variables read ``OFFHOURS_OPS__...``), e.g.
``OFFHOURS_OPS__TOKENS='{"ops:anna": "s3cr3t"}'``.

``tokens`` maps an *identity* to its bearer token, identity first: the identity is
what the audit log records as "who", and the keys of a mapping are printed freely in
configuration dumps while the tokens, as :class:`~pydantic.SecretStr`, print as
``**********``. A value is the token itself (scope ``admin``, as before scopes
existed) or ``{"token": "...", "scope": "read" | "operate" | "admin"}``.
:meth:`OpsSettings.bearer_tokens` turns it around (token -> :class:`Principal`), the
form :func:`edge.ops.build_operations_api` takes.

Scopes nest: ``read`` (the GET endpoints, coverage with its secrets masked),
``operate`` (also overrides, claims, answered), ``admin`` (also replacing the coverage
and reading it unmasked).

``link_secret`` signs the claim links sent in notifications. When it is not set, a
random secret is made when the settings are built: links then work within this one
process only, so every deployment with more than one worker (or that wants links to
survive a restart) must configure it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from edge.config import check_secret
from schedules.holiday import CalendarSource, DirectoryCalendars, NoCalendars
from schedules.loader import LoadLimits

CALENDARS_SETTING = "OFFHOURS_OPS__HOLIDAY_CALENDARS_DIR"


def api_calendars(directory: Path | None) -> CalendarSource:
    """Where coverage from the API and the config topic reads ``holidays.ics``: ``directory``, by name, or nowhere."""
    if directory is None:
        return NoCalendars(hint=f"set {CALENDARS_SETTING} to the folder that holds the .ics files and write "
                           "a file's name alone (ics: closures.ics), or list the days under 'extra'")
    return DirectoryCalendars(directory, hint=f"put the .ics file in the folder that {CALENDARS_SETTING} "
                              "names and write its name alone, e.g. ics: closures.ics")


Scope = Literal["read", "operate", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "operate", "admin")
"""The scopes of the operations API, each including the ones before it."""


class Principal(NamedTuple):
    """Who a bearer token stands for: the identity of the audit log and its scope."""

    identity: str
    scope: Scope = "admin"


class OpsToken(BaseModel):
    """One bearer token and its scope (a plain string in the settings means scope ``admin``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    scope: Scope = "admin"

    def get_secret_value(self) -> str:
        """The token, like :meth:`SecretStr.get_secret_value`."""
        return self.token.get_secret_value()


def _random_link_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


class OpsSettings(BaseModel):
    """Bearer tokens, link signing and the topics of the operations API."""

    tokens: dict[str, OpsToken] = Field(
        default_factory=dict,
        description="identity -> bearer token, e.g. {\"ops:anna\": \"s3cr3t\"} (scope admin), or "
        "identity -> {\"token\": \"...\", \"scope\": \"read|operate|admin\"}; "
        "empty means every API call except the OpenAPI document and action links is refused",
    )
    link_secret: SecretStr = Field(
        default_factory=_random_link_secret,
        description="HMAC key of the signed action links; unset: random per process",
    )
    link_ttl: timedelta = Field(default=timedelta(hours=12), gt=timedelta(0))
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="where people reach this service; action links start with it",
    )
    api_prefix: str = "/api/v1"
    holiday_calendars_dir: Path | None = Field(
        default=None,
        description="the one folder whose .ics files coverage published through the API may name "
        "(holidays.ics: a file name alone); unset: the service uses the coverage file's folder",
    )
    max_coverage_bytes: int = Field(
        default=1024 * 1024, gt=0, description="largest coverage document accepted (UTF-8 bytes)"
    )
    max_teams: int = Field(default=1000, gt=0, description="most teams a coverage document may hold")
    rate_limit: float = Field(
        default=20.0, ge=0,
        description="operations API requests per second allowed per token (per client address "
        "without a valid token); 0 turns the limit off",
    )
    rate_burst: int = Field(default=100, gt=0, description="requests a token or address may make at once")
    audit_topic: str = "offhours.audit"
    actions_topic: str = "offhours.actions"
    console: bool = Field(
        default=True,
        description="serve the operations console (/console) from this process; its view reads the "
        "events, actions and routes topics and decides every event again, so a process that nobody "
        "signs in to (a worker behind the api replicas) saves that work with false",
    )

    # A refused secret must not reach an error message, however the settings are built.
    model_config = ConfigDict(hide_input_in_errors=True)

    @field_validator("link_secret")
    @classmethod
    def _strong_link_secret(cls, value: SecretStr) -> SecretStr:
        checked = check_secret(value, "OFFHOURS_OPS__LINK_SECRET")
        assert checked is not None
        return checked

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("tokens", mode="before")
    @classmethod
    def _plain_token_is_admin(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {identity: {"token": token} if isinstance(token, (str, SecretStr)) else token
                    for identity, token in value.items()}
        return value

    @field_validator("tokens")
    @classmethod
    def _distinct_nonempty_tokens(cls, value: dict[str, OpsToken]) -> dict[str, OpsToken]:
        seen: set[str] = set()
        for identity, token in value.items():
            secret = token.get_secret_value()
            if not secret.strip():
                raise ValueError(f"OFFHOURS_OPS__TOKENS: the token of {identity!r} is empty")
            if secret in seen:
                # The same token for two identities would make the audit's "who" a guess.
                raise ValueError(f"OFFHOURS_OPS__TOKENS: the token of {identity!r} is also another identity's token")
            seen.add(secret)
        return value

    def bearer_tokens(self) -> dict[str, Principal]:
        """Token -> who it stands for (identity and scope), the mapping the operations API authenticates with."""
        return {token.get_secret_value(): Principal(identity, token.scope) for identity, token in self.tokens.items()}

    @property
    def actions_base_url(self) -> str:
        """The public URL under which signed action links are served."""
        return f"{self.public_base_url}{self.api_prefix}/actions"

    def coverage_limits(self) -> LoadLimits:
        """The bounds of a coverage document from the API or the config topic."""
        return LoadLimits(max_bytes=self.max_coverage_bytes, max_teams=self.max_teams)

    def api_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`edge.ops.build_operations_api` these settings set."""
        return {"rate_limit": self.rate_limit, "rate_burst": self.rate_burst,
                "max_coverage_bytes": self.max_coverage_bytes}
