"""Webhook signature checks: pure functions over the raw body and the header value.

Every check HMACs the **raw bytes** of the request (never re-serialised JSON) and
compares with :func:`hmac.compare_digest`, so the time taken does not reveal how much
of a forged signature was right. A check returns a :class:`Verdict`: ``MISSING`` when
the header is absent or not in the platform's form (answer 401), ``FORGED`` when it
does not match (answer 403), ``STALE`` when a signed timestamp is too far from the
clock (Chatwoot; answer 401), ``VALID`` otherwise. The reason texts never contain a
secret or the expected signature. An empty secret verifies nothing (``FORGED``) and
signs nothing (:class:`ValueError`): anyone can compute an HMAC under the empty key.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Callable

SHA256_PREFIX = "sha256="

MAX_CRC_TOKEN_CHARS = 128
"""Longest ``crc_token`` answered. X's tokens are a few dozen base64 characters; the
cap leaves room for a longer one without making the CRC route a general signer."""

_CRC_TOKEN = re.compile(rf"[A-Za-z0-9+/=_-]{{1,{MAX_CRC_TOKEN_CHARS}}}")


class Verdict(enum.Enum):
    """The outcome of a signature check."""

    VALID = "valid"
    MISSING = "missing"
    FORGED = "forged"
    STALE = "stale"


CHATWOOT_TOLERANCE = 300
"""Seconds a Chatwoot ``X-Chatwoot-Timestamp`` may lie before or after the clock."""


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    if not secret:
        # Anyone can compute an HMAC under the empty key: it authenticates nothing.
        raise ValueError("refusing to sign or verify with an empty secret")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def tokens_match(expected: str, given: str) -> bool:
    """Constant-time equality of two shared-secret texts (verify tokens, secret headers)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def _compare(expected: str, given: str) -> Verdict:
    return Verdict.VALID if tokens_match(expected, given) else Verdict.FORGED


def _prefixed(header: str | None) -> str | None:
    """The part after ``sha256=``, or None when the header is absent or in another form."""
    if header is None:
        return None
    header = header.strip()
    if not header.lower().startswith(SHA256_PREFIX) or len(header) == len(SHA256_PREFIX):
        return None
    return header[len(SHA256_PREFIX) :]


def meta_signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends: ``sha256=`` + lowercase hex HMAC-SHA256."""
    return SHA256_PREFIX + _hmac_sha256(app_secret, body).hex()


def verify_meta(app_secret: str, body: bytes, header: str | None) -> Verdict:
    """Check Meta's ``X-Hub-Signature-256`` (Messenger, Instagram, WhatsApp) over ``body``.

    Hex digits are compared case-insensitively; the legacy SHA-1 ``X-Hub-Signature``
    is not accepted.
    """
    given = _prefixed(header)
    if given is None:
        return Verdict.MISSING
    if not app_secret:
        return Verdict.FORGED
    return _compare(_hmac_sha256(app_secret, body).hex(), given.lower())


def x_signature(consumer_secret: str, message: bytes) -> str:
    """``sha256=`` + base64 HMAC-SHA256: X's webhook signature and CRC ``response_token``."""
    return SHA256_PREFIX + base64.b64encode(_hmac_sha256(consumer_secret, message)).decode("ascii")


def is_crc_token(value: str) -> bool:
    """True for a ``crc_token`` of X's shape: 1 to :data:`MAX_CRC_TOKEN_CHARS` characters of
    the base64 and URL-safe base64 alphabets (``A-Z a-z 0-9 + / = _ -``).

    The CRC answer is the HMAC of the token under the consumer secret, exactly the
    signature ``POST`` checks over a body: answering anything a webhook body could be
    (it starts with ``{``, holds quotes and spaces) would sign forged events.
    """
    return _CRC_TOKEN.fullmatch(value) is not None


def x_crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """The JSON body answering X's CRC check ``GET ?crc_token=...``.

    Raises :class:`ValueError` for a token that is not of X's shape (:func:`is_crc_token`):
    this function must never sign a webhook body.
    """
    if not is_crc_token(crc_token):
        raise ValueError("crc_token is not of X's shape")
    return {"response_token": x_signature(consumer_secret, crc_token.encode("ascii"))}


def verify_x(consumer_secret: str, body: bytes, header: str | None) -> Verdict:
    """Check X's ``x-twitter-webhooks-signature`` (base64, case-sensitive) over ``body``."""
    given = _prefixed(header)
    if given is None:
        return Verdict.MISSING
    if not consumer_secret:
        return Verdict.FORGED
    expected = base64.b64encode(_hmac_sha256(consumer_secret, body)).decode("ascii")
    return _compare(expected, given)


def verify_telegram(secret_token: str, header: str | None) -> Verdict:
    """Check Telegram's ``X-Telegram-Bot-Api-Secret-Token`` (no body signature exists)."""
    if not header:
        return Verdict.MISSING
    if not secret_token:
        return Verdict.FORGED
    return _compare(secret_token, header)


def generic_signature(secret: str, body: bytes) -> str:
    """The ``X-Offhours-Signature`` value a generic producer sends: ``sha256=<hex>``."""
    return SHA256_PREFIX + _hmac_sha256(secret, body).hex()


def verify_generic(secret: str, body: bytes, header: str | None) -> Verdict:
    """Check ``X-Offhours-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``."""
    return verify_meta(secret, body, header)


def chatwoot_signature(secret: str, body: bytes, timestamp: str) -> str:
    """The ``X-Chatwoot-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    return SHA256_PREFIX + _hmac_sha256(secret, timestamp.encode("ascii") + b"." + body).hex()


def verify_chatwoot(
    secret: str,
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    now: Callable[[], float],
    *,
    tolerance: int = CHATWOOT_TOLERANCE,
) -> Verdict:
    """Check Chatwoot's ``X-Chatwoot-Signature`` over ``X-Chatwoot-Timestamp``, a dot and ``body``.

    ``MISSING`` when either header is absent or not in its form (the timestamp is whole
    POSIX seconds, at most 12 digits); ``FORGED`` when the HMAC does not match; ``STALE``
    when it matches but the timestamp lies more than ``tolerance`` seconds before or
    after ``now()`` (a replayed delivery). The time is checked after the HMAC, so an
    unsigned request never learns anything about the clock. Raises :class:`ValueError`
    for an empty ``secret``.
    """
    if not secret:
        raise ValueError("refusing to sign or verify with an empty secret")
    given = _prefixed(signature_header)
    stamp = (timestamp_header or "").strip()
    if given is None or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return Verdict.MISSING
    verdict = _compare(chatwoot_signature(secret, body, stamp)[len(SHA256_PREFIX):], given.lower())
    if verdict is not Verdict.VALID:
        return verdict
    if abs(now() - int(stamp)) > tolerance:
        return Verdict.STALE
    return Verdict.VALID
