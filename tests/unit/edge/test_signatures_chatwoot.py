"""Chatwoot's webhook signature: ``X-Chatwoot-Signature`` over ``X-Chatwoot-Timestamp``, a dot
and the raw body, refused when the timestamp is more than five minutes from the clock."""

from __future__ import annotations

import pytest

from edge import signatures
from edge.signatures import CHATWOOT_TOLERANCE, Verdict

SECRET = "test_chatwoot_secret"
BODY = b'{"event":"message_created"}'
STAMP = "1795813368"
# printf '%s' '1795813368.{"event":"message_created"}' | openssl dgst -sha256 -hmac test_chatwoot_secret -hex
VECTOR = "sha256=351ac6c2fb517ac5a3e89ec72cecc063b5babc6de8128309dc4903a59273018d"


def at(seconds: float):
    return lambda: seconds


NOW = at(int(STAMP) + 2)


class TestChatwootSignature:
    def test_vector(self) -> None:
        """The signature of the documented body and timestamp is the documented one (openssl agrees)."""
        assert VECTOR == signatures.chatwoot_signature(SECRET, BODY, STAMP)

    @pytest.mark.parametrize(
        ("body", "signature", "stamp", "expected"),
        [
            pytest.param(BODY, VECTOR, STAMP, Verdict.VALID, id="vector"),
            pytest.param(BODY, VECTOR.upper().replace("SHA256=", "sha256="), STAMP, Verdict.VALID, id="uppercase_hex"),
            pytest.param(BODY + b" ", VECTOR, STAMP, Verdict.FORGED, id="body_changed"),
            pytest.param(BODY, VECTOR, str(int(STAMP) + 1), Verdict.FORGED, id="timestamp_changed"),
            pytest.param(BODY, VECTOR[:-1] + "0", STAMP, Verdict.FORGED, id="digit_changed"),
            pytest.param(BODY, None, STAMP, Verdict.MISSING, id="no_signature"),
            pytest.param(BODY, VECTOR, None, Verdict.MISSING, id="no_timestamp"),
            pytest.param(BODY, VECTOR, "", Verdict.MISSING, id="empty_timestamp"),
            pytest.param(BODY, VECTOR, "2026-11-27T21:02:48Z", Verdict.MISSING, id="iso_timestamp"),
            pytest.param(BODY, VECTOR, "-1795813368", Verdict.MISSING, id="negative_timestamp"),
            pytest.param(BODY, VECTOR, "9" * 40, Verdict.MISSING, id="huge_timestamp"),
            pytest.param(BODY, "sha1=" + "0" * 40, STAMP, Verdict.MISSING, id="other_algorithm"),
            pytest.param(BODY, "sha256=", STAMP, Verdict.MISSING, id="empty_digest"),
        ],
    )
    def test_verify(self, body: bytes, signature: str | None, stamp: str | None, expected: Verdict) -> None:
        """Only the HMAC of the timestamp, a dot and the exact raw body under the secret is valid."""
        assert expected == signatures.verify_chatwoot(SECRET, body, signature, stamp, NOW)

    @pytest.mark.parametrize(
        ("offset", "expected"),
        [
            pytest.param(-CHATWOOT_TOLERANCE, Verdict.VALID, id="five_minutes_old"),
            pytest.param(-CHATWOOT_TOLERANCE - 1, Verdict.STALE, id="older"),
            pytest.param(CHATWOOT_TOLERANCE, Verdict.VALID, id="five_minutes_ahead"),
            pytest.param(CHATWOOT_TOLERANCE + 1, Verdict.STALE, id="further_ahead"),
            pytest.param(-86_400 * 400, Verdict.STALE, id="a_year_old"),
        ],
    )
    def test_timestamp_window(self, offset: int, expected: Verdict) -> None:
        """A correctly signed delivery whose timestamp is over 300 s from the clock is stale (a replay)."""
        stamp = str(int(STAMP) + offset)
        header = signatures.chatwoot_signature(SECRET, BODY, stamp)
        assert expected == signatures.verify_chatwoot(SECRET, BODY, header, stamp, at(int(STAMP)))

    def test_forged_and_stale_is_forged(self) -> None:
        """A wrong signature is forged whatever its timestamp: the clock is read only for a valid one."""
        def clock() -> float:
            raise AssertionError("the clock was read for a forged request")

        assert Verdict.FORGED == signatures.verify_chatwoot(SECRET, BODY, VECTOR[:-1] + "0", "1000000000", clock)

    def test_other_secret_is_forged(self) -> None:
        """The same delivery checked under another secret does not match."""
        assert Verdict.FORGED == signatures.verify_chatwoot("another_chatwoot_secret", BODY, VECTOR, STAMP, NOW)

    def test_empty_secret_refused(self) -> None:
        """An empty secret verifies nothing: anyone can compute an HMAC under the empty key."""
        with pytest.raises(ValueError, match="empty secret"):
            signatures.verify_chatwoot("", BODY, VECTOR, STAMP, NOW)
        with pytest.raises(ValueError, match="empty secret"):
            signatures.chatwoot_signature("", BODY, STAMP)
