"""Settings of the operations API and of the on-call action links.

A plain pydantic model, meant to be nested in ``streams.settings.Settings`` (as
``ops``, so environment variables read ``OFFHOURS_OPS__...``), e.g.
``OFFHOURS_OPS__TOKENS='{"ops:anna": "s3cr3t"}'``.

``tokens`` maps an *identity* to its bearer token, identity first: the identity is
what the audit log records as "who", and the keys of a mapping are printed freely in
configuration dumps while the tokens, as :class:`~pydantic.SecretStr`, print as
``**********``. :meth:`OpsSettings.bearer_tokens` turns it around (token -> identity),
the form :func:`edge.ops.build_operations_api` takes.

``link_secret`` signs the claim links sent in notifications. When it is not set, a
random secret is made when the settings are built: links then work within this one
process only, so every deployment with more than one worker (or that wants links to
survive a restart) must configure it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from pydantic import BaseModel, Field, SecretStr, field_validator


def _random_link_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


class OpsSettings(BaseModel):
    """Bearer tokens, link signing and the topics of the operations API."""

    tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="identity -> bearer token, e.g. {\"ops:anna\": \"s3cr3t\"}; "
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
    audit_topic: str = "offhours.audit"
    actions_topic: str = "offhours.actions"

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("tokens")
    @classmethod
    def _distinct_nonempty_tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: set[str] = set()
        for identity, token in value.items():
            secret = token.get_secret_value()
            if not secret:
                raise ValueError(f"the token of {identity!r} is empty")
            if secret in seen:
                # The same token for two identities would make the audit's "who" a guess.
                raise ValueError(f"the token of {identity!r} is also another identity's token")
            seen.add(secret)
        return value

    def bearer_tokens(self) -> dict[str, str]:
        """Token -> identity, the mapping the operations API authenticates with."""
        return {token.get_secret_value(): identity for identity, token in self.tokens.items()}

    @property
    def actions_base_url(self) -> str:
        """The public URL under which signed action links are served."""
        return f"{self.public_base_url}{self.api_prefix}/actions"
