"""Every notice kind through every notifier reads like a message a person would send.

Each kind (:data:`responders.notice.NOTICE_KINDS`) is built by the code that makes it in
the service (:mod:`tests.support.notice_kinds`) and rendered by each notifier; the
text a person reads is compared whole, line by line: what happened, the customer's
words, the channel by its name, the account, the real wait, the team's mode, the reason
and the links to claim the conversation.
"""

from __future__ import annotations

from dataclasses import replace

from responders.notice import NOTICE_KINDS
from tests.support.notice_kinds import built
from tests.support.responders_notice_kinds import EXPECTED


def test_every_kind_is_covered() -> None:
    assert set(NOTICE_KINDS) == set(EXPECTED) and all(built(kind).notice("slack:x").kind == kind for kind in NOTICE_KINDS)


def test_without_a_link_signer_no_link_is_shown() -> None:
    """No signer: the digest lists the conversations with no claim line and no placeholder."""
    notice = replace(built("handover"), links={}).notice("mailto:marta@example.com")
    text = notice.plain_text()
    assert (False, False, []) == ("Claim it" in text, "{link:" in text, notice.links_shown())


def test_a_long_digest_lists_the_first_conversations_and_counts_the_rest() -> None:
    """A digest of 13 lists the first 10 (each with its link) and says how many more wait."""
    digest = built("handover")
    items = [{**digest.route.extra["handover"][0], "conversation": f"tg:offhours_bot:{n}"} for n in range(13)]
    route = replace(digest.route, extra={**digest.route.extra, "handover": items})
    links = {item["conversation"]: f"https://offhours.example/c/{n}" for n, item in enumerate(items)}
    notice = replace(digest, route=route, links=links).notice("telegram:99887766")
    lines = notice.message.split("\n")
    assert ("[Handover] 13 conversations waiting for care-it", 10, "… and 3 more in the team's inbox") == (
        notice.title, len(notice.links_shown()), lines[-1])

