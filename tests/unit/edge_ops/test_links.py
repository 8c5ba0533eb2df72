"""Signed, expiring action links."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from records.links import ActionLink, LinkInvalid, LinkSigner, UsedLinks
from tests.support.ops import ROME, FixedClock

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def link_clock() -> FixedClock:
    return FixedClock(datetime(2026, 10, 25, 1, 30, tzinfo=ROME))


@pytest.fixture
def links(link_clock: FixedClock) -> LinkSigner:
    return LinkSigner("k" * 32, ttl=timedelta(hours=2), clock=link_clock, base_url="https://offhours.example/api/v1/actions/")


class TestLinkSigner:
    def test_a_fresh_link_verifies(self, links: LinkSigner, link_clock: FixedClock) -> None:
        """A link verifies to its action, conversation, member and expiry (ttl after now)."""
        token = links.token("claim", "fb:PAGE_111:PSID_222", "marta")
        expected = ActionLink("claim", "fb:PAGE_111:PSID_222", "marta", link_clock() + timedelta(hours=2))
        assert expected == links.verify(token)

    def test_url_appends_the_token(self, links: LinkSigner) -> None:
        """The URL is the actions base URL, one slash, then the token."""
        url = links.url("answered", "tg:bot:42", "luca")
        assert url.startswith("https://offhours.example/api/v1/actions/") and "//" not in url.removeprefix("https://")

    @pytest.mark.parametrize(
        ("elapsed", "valid"),
        [
            pytest.param(timedelta(hours=2) - timedelta(seconds=1), True, id="last_second"),
            pytest.param(timedelta(hours=2), False, id="at_expiry"),
            pytest.param(timedelta(hours=3), False, id="across_fall_back_hour"),
        ],
    )
    def test_expiry_is_checked_against_the_clock(self, links: LinkSigner, link_clock: FixedClock, elapsed: timedelta, valid: bool) -> None:
        """A link is valid while now < expiry; the expiry is an instant, unaffected by DST."""
        token = links.token("claim", "c", "marta")
        link_clock.advance(elapsed)
        try:
            outcome = links.verify(token).member
        except LinkInvalid as invalid:
            outcome = invalid.reason
        assert ("marta" if valid else "expired") == outcome

    @pytest.mark.parametrize(
        ("mangle", "reason"),
        [
            pytest.param(lambda t: t.replace(".", ""), "malformed", id="no_dot"),
            pytest.param(lambda t: t + "!", "malformed", id="bad_base64"),
            pytest.param(lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "tampered", id="changed_signature"),
            pytest.param(lambda t: LinkSigner("other", ttl=timedelta(hours=1), clock=lambda: datetime(2026, 10, 25, tzinfo=ROME)).token("claim", "c", "marta"), "tampered", id="other_secret"),
        ],
    )
    def test_mangled_links_are_refused(self, links: LinkSigner, mangle, reason: str) -> None:
        """Links that were cut, changed or signed with another secret are refused, saying why."""
        with pytest.raises(LinkInvalid) as refused:
            links.verify(mangle(links.token("claim", "c", "marta")))
        assert reason == refused.value.reason

    @pytest.mark.parametrize(
        "respell",
        [
            pytest.param(lambda t: t + "=", id="padding"),
            pytest.param(lambda t: t[:-1] + _ALPHABET[_ALPHABET.index(t[-1]) ^ 1], id="stray_bits_in_last_character"),
            pytest.param(lambda t: t.translate(str.maketrans("-_", "+/")), id="standard_alphabet"),
            pytest.param(lambda t: t.replace(".", ".\n"), id="whitespace"),
        ],
    )
    def test_other_spellings_of_a_valid_link_are_refused(self, links: LinkSigner, respell) -> None:
        """Only the canonical unpadded URL-safe spelling verifies: every other spelling of the same bytes is malformed."""
        token = next(t for t in (links.token("claim", f"fb:P:{n}", "marta") for n in range(200)) if "-" in t and "_" in t)
        with pytest.raises(LinkInvalid) as refused:
            links.verify(respell(token))
        assert "malformed" == refused.value.reason

    def test_a_used_link_is_remembered_until_it_expires(self, links: LinkSigner, link_clock: FixedClock) -> None:
        """A used link's signature is kept while the link could still be presented, then forgotten."""
        used = UsedLinks(link_clock, capacity=10)
        link = links.verify(links.token("claim", "c", "marta"))
        first, again = used.use(link), used.use(link)
        link_clock.advance(timedelta(hours=2))
        used.use(links.verify(links.token("claim", "c", "luca")))
        assert (True, False, 1) == (first, again, len(used))

    def test_used_links_memory_is_bounded(self, links: LinkSigner, link_clock: FixedClock) -> None:
        """Beyond its capacity the memory drops the link that expires soonest."""
        used = UsedLinks(link_clock, capacity=3)
        soonest = links.verify(links.token("claim", "c0", "marta", expires=link_clock() + timedelta(minutes=5)))
        used.use(soonest)
        for n in range(1, 4):
            used.use(links.verify(links.token("claim", f"c{n}", "marta")))
        assert (3, False) == (len(used), used.used(soonest))

    @pytest.mark.parametrize(
        ("action", "conversation", "member"),
        [
            pytest.param("delete", "c", "marta", id="unknown_action"),
            pytest.param("claim", "a|b", "marta", id="separator_in_conversation"),
            pytest.param("claim", "c", "", id="empty_member"),
        ],
    )
    def test_unsignable_values_are_refused(self, links: LinkSigner, action: str, conversation: str, member: str) -> None:
        """Values that would make the signed text ambiguous are refused when signing."""
        with pytest.raises(ValueError):
            links.token(action, conversation, member)  # type: ignore[arg-type]
