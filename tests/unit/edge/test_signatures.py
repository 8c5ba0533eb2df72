"""Webhook signature checks against the vectors of docs/platforms.md, "Webhook signatures"."""

from __future__ import annotations

import pytest

from edge import signatures
from edge.signatures import Verdict

META_SECRET = "test_app_secret"
META_BODY = b'{"object":"page","entry":[]}'
META_VECTOR = "sha256=5da47c9c7409e70d7a1851f0cfd9bc27786bd99587a9bf1dd5b51e23a2de03cf"
X_SECRET = "test_consumer_secret"
X_BODY = b'{"for_user_id":"42"}'
X_VECTOR = "sha256=LyIyWD7Y0DRLsnn8+kVnRb/0Fg1b5ycDkSR9VK1pE+Q="


class TestMetaSignature:
    def test_vector(self) -> None:
        """The signature of the documented body is the documented one."""
        assert META_VECTOR == signatures.meta_signature(META_SECRET, META_BODY)

    @pytest.mark.parametrize(
        ("body", "header", "expected"),
        [
            pytest.param(META_BODY, META_VECTOR, Verdict.VALID, id="vector"),
            pytest.param(META_BODY, META_VECTOR.upper().replace("SHA256=", "sha256="), Verdict.VALID, id="uppercase_hex"),
            pytest.param(META_BODY + b" ", META_VECTOR, Verdict.FORGED, id="body_changed"),
            pytest.param(META_BODY, META_VECTOR[:-1] + "0", Verdict.FORGED, id="digit_changed"),
            pytest.param(META_BODY, None, Verdict.MISSING, id="no_header"),
            pytest.param(META_BODY, "sha1=" + "0" * 40, Verdict.MISSING, id="legacy_sha1"),
            pytest.param(META_BODY, "sha256=", Verdict.MISSING, id="empty_digest"),
        ],
    )
    def test_verify(self, body: bytes, header: str | None, expected: Verdict) -> None:
        """Only the sha256 HMAC of the exact raw body with the app secret is valid."""
        assert expected == signatures.verify_meta(META_SECRET, body, header)

    def test_reserialised_json_is_forged(self) -> None:
        """The same JSON with other whitespace is another body: its signature does not match."""
        assert Verdict.FORGED == signatures.verify_meta(
            META_SECRET, b'{"object": "page", "entry": []}', META_VECTOR
        )


class TestXSignature:
    def test_crc_vector(self) -> None:
        """The CRC answer for the documented token is the documented response_token."""
        expected = {"response_token": "sha256=WTP6ckqLOLFsB+woMqoUFnbdaUQZslRlj+Df7hg+aVo="}
        assert expected == signatures.x_crc_response(X_SECRET, "crc-token-123")

    @pytest.mark.parametrize(
        ("token", "expected"),
        [
            pytest.param("crc-token-123", True, id="documented"),
            pytest.param("OTIzZDE1YTctZjc4MC00ZWUy+/==", True, id="base64"),
            pytest.param("a" * signatures.MAX_CRC_TOKEN_CHARS, True, id="longest"),
            pytest.param("a" * (signatures.MAX_CRC_TOKEN_CHARS + 1), False, id="too_long"),
            pytest.param(X_BODY.decode(), False, id="webhook_body"),
            pytest.param("crc token", False, id="space"),
            pytest.param("crc-token-123\n", False, id="trailing_newline"),
            pytest.param("", False, id="empty"),
        ],
    )
    def test_crc_token_shape(self, token: str, expected: bool) -> None:
        """Only short base64/url-safe tokens are CRC tokens; a webhook body never is."""
        assert expected == signatures.is_crc_token(token)

    def test_crc_response_refuses_a_body(self) -> None:
        """x_crc_response never signs a webhook body, whoever calls it."""
        with pytest.raises(ValueError, match="crc_token"):
            signatures.x_crc_response(X_SECRET, X_BODY.decode())

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param(X_VECTOR, Verdict.VALID, id="vector"),
            pytest.param(X_VECTOR.replace("LyIy", "lyiy"), Verdict.FORGED, id="base64_is_case_sensitive"),
            pytest.param("sha256=" + signatures.meta_signature(X_SECRET, X_BODY)[7:], Verdict.FORGED, id="hex_instead_of_base64"),
            pytest.param(None, Verdict.MISSING, id="no_header"),
        ],
    )
    def test_verify(self, header: str | None, expected: Verdict) -> None:
        """The POST signature is the base64 HMAC of the raw body with the consumer secret."""
        assert expected == signatures.verify_x(X_SECRET, X_BODY, header)


class TestTelegramSecret:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            pytest.param("s3cret_TOKEN-1", Verdict.VALID, id="same"),
            pytest.param("s3cret_TOKEN-2", Verdict.FORGED, id="different"),
            pytest.param("s3cret_token-1", Verdict.FORGED, id="case_differs"),
            pytest.param("", Verdict.MISSING, id="empty"),
            pytest.param(None, Verdict.MISSING, id="absent"),
        ],
    )
    def test_verify(self, header: str | None, expected: Verdict) -> None:
        """The secret token header must equal the token given to setWebhook."""
        assert expected == signatures.verify_telegram("s3cret_TOKEN-1", header)


class TestGenericSignature:
    def test_round_trip(self) -> None:
        """A body signed with generic_signature verifies; with another secret it does not."""
        body = b'[{"id":"generic:1"}]'
        header = signatures.generic_signature("generic-secret", body)
        assert (Verdict.VALID, Verdict.FORGED) == (
            signatures.verify_generic("generic-secret", body, header),
            signatures.verify_generic("other-secret", body, header),
        )
