"""Edge and operations settings refuse secrets that would not protect anything."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from pydantic import ValidationError

from edge import signatures
from edge.config import EdgeSettings
from edge.ops_config import OpsSettings
from edge.signatures import Verdict
from streams.settings import Settings

GOOD = "0123456789abcdef"  # 16 characters: the shortest accepted secret


def refusal(error: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) of each error, as the command line shows them (no input)."""
    return [(tuple(e["loc"]), e["msg"]) for e in error.errors(include_url=False, include_input=False)]


class TestEdgeSecrets:
    @pytest.mark.parametrize(
        ("field", "value", "variable"),
        [
            pytest.param("meta_app_secret", "", "OFFHOURS_EDGE__META_APP_SECRET", id="meta_app_secret_empty"),
            pytest.param("meta_app_secret", "abc123", "OFFHOURS_EDGE__META_APP_SECRET", id="meta_app_secret_short"),
            pytest.param("meta_verify_token", "", "OFFHOURS_EDGE__META_VERIFY_TOKEN", id="verify_token_empty"),
            pytest.param("meta_verify_token", "verify-me", "OFFHOURS_EDGE__META_VERIFY_TOKEN", id="verify_token_short"),
            pytest.param("x_consumer_secret", "", "OFFHOURS_EDGE__X_CONSUMER_SECRET", id="x_secret_empty"),
            pytest.param("x_consumer_secret", "x" * 15, "OFFHOURS_EDGE__X_CONSUMER_SECRET", id="x_secret_15_chars"),
            pytest.param("telegram_secret_token", "", "OFFHOURS_EDGE__TELEGRAM_SECRET_TOKEN", id="telegram_empty"),
            pytest.param("telegram_secret_token", "tg_secret-1", "OFFHOURS_EDGE__TELEGRAM_SECRET_TOKEN", id="telegram_short"),
            pytest.param("telegram_secret_token", "a" * 257, "OFFHOURS_EDGE__TELEGRAM_SECRET_TOKEN", id="telegram_257_chars"),
            pytest.param("telegram_secret_token", "secret token with spaces", "OFFHOURS_EDGE__TELEGRAM_SECRET_TOKEN",
                         id="telegram_alphabet"),
            pytest.param("generic_secret", "", "OFFHOURS_EDGE__GENERIC_SECRET", id="generic_empty"),
            pytest.param("generic_secret", "dev-secret", "OFFHOURS_EDGE__GENERIC_SECRET", id="generic_short"),
            pytest.param("generic_secret", " " * 20, "OFFHOURS_EDGE__GENERIC_SECRET", id="generic_blank"),
        ],
    )
    def test_weak_secret_is_refused_naming_the_variable(self, field: str, value: str, variable: str) -> None:
        """An empty, short or malformed secret is refused when the settings are built, naming its variable, not its value."""
        with pytest.raises(ValidationError) as caught:
            EdgeSettings(**{field: value})
        [(location, message)] = refusal(caught.value)
        shown = message + str(caught.value)
        assert ((field,), True, False) == (location, variable in message, bool(value.strip()) and value in shown)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            pytest.param("meta_app_secret", "0123456789abcdef0123456789abcdef", id="meta_32_hex"),
            pytest.param("meta_verify_token", GOOD, id="verify_token_16"),
            pytest.param("x_consumer_secret", "x" * 50, id="x_50_chars"),
            pytest.param("telegram_secret_token", "Ab0_-" * 4, id="telegram_20"),
            pytest.param("telegram_secret_token", "a" * 256, id="telegram_256"),
            pytest.param("generic_secret", GOOD, id="generic_16"),
        ],
    )
    def test_strong_secret_is_kept(self, field: str, value: str) -> None:
        """A secret of sane length (and Telegram's alphabet) is accepted as given."""
        assert value == getattr(EdgeSettings(**{field: value}), field).get_secret_value()

    def test_unset_secret_stays_allowed(self) -> None:
        """Leaving a secret unset is still allowed: that webhook answers 503 until it is set."""
        assert [None] * 5 == [
            getattr(EdgeSettings(), field)
            for field in ("meta_app_secret", "meta_verify_token", "x_consumer_secret", "telegram_secret_token",
                          "generic_secret")
        ]

    def test_environment_error_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OFFHOURS_EDGE__GENERIC_SECRET= (empty) stops the settings with that variable's location, value not echoed."""
        monkeypatch.setenv("OFFHOURS_EDGE__GENERIC_SECRET", "")
        with pytest.raises(ValidationError) as caught:
            Settings()
        [(location, message)] = refusal(caught.value)
        assert (("edge", "generic_secret"), True) == (location, "OFFHOURS_EDGE__GENERIC_SECRET" in message)


class TestOpsSecrets:
    @pytest.mark.parametrize(
        ("changes", "variable"),
        [
            pytest.param({"link_secret": ""}, "OFFHOURS_OPS__LINK_SECRET", id="link_secret_empty"),
            pytest.param({"link_secret": "link-secret"}, "OFFHOURS_OPS__LINK_SECRET", id="link_secret_short"),
            pytest.param({"tokens": {"ops:anna": ""}}, "OFFHOURS_OPS__TOKENS", id="token_empty"),
            pytest.param({"tokens": {"ops:anna": "   "}}, "OFFHOURS_OPS__TOKENS", id="token_blank"),
        ],
    )
    def test_weak_secret_is_refused_naming_the_variable(self, changes: dict[str, Any], variable: str) -> None:
        """An empty or short link secret and an empty bearer token are refused, naming the variable."""
        with pytest.raises(ValidationError) as caught:
            OpsSettings(**changes)
        [(location, message)] = refusal(caught.value)
        assert ((next(iter(changes)),), True) == (location, variable in message)

    def test_default_link_secret_is_strong(self) -> None:
        """Without a configured link secret the random one is long enough."""
        assert len(OpsSettings().link_secret.get_secret_value()) >= 16


class TestVerifiersRefuseAnEmptyKey:
    BODY = b'{"object":"page","entry":[]}'
    EMPTY_KEY_SIGNATURE = hmac.new(b"", BODY, hashlib.sha256)

    @pytest.mark.parametrize(
        ("verify", "header"),
        [
            pytest.param(signatures.verify_meta, "sha256=" + EMPTY_KEY_SIGNATURE.hexdigest(), id="meta"),
            pytest.param(signatures.verify_generic, "sha256=" + EMPTY_KEY_SIGNATURE.hexdigest(), id="generic"),
            pytest.param(
                signatures.verify_x,
                "sha256=" + __import__("base64").b64encode(EMPTY_KEY_SIGNATURE.digest()).decode(),
                id="x",
            ),
        ],
    )
    def test_empty_key_never_verifies(self, verify: Any, header: str) -> None:
        """A body signed with an empty key is refused by a verifier given an empty key."""
        assert Verdict.FORGED == verify("", self.BODY, header)

    def test_empty_telegram_token_never_verifies(self) -> None:
        """An empty configured Telegram token matches no header."""
        assert Verdict.FORGED == signatures.verify_telegram("", "anything")

    @pytest.mark.parametrize(
        "sign",
        [
            pytest.param(signatures.meta_signature, id="meta"),
            pytest.param(signatures.x_signature, id="x"),
            pytest.param(signatures.generic_signature, id="generic"),
        ],
    )
    def test_signing_with_an_empty_key_is_refused(self, sign: Any) -> None:
        """Signing with an empty key raises instead of making a signature anyone could make."""
        with pytest.raises(ValueError, match="empty"):
            sign("", self.BODY)
