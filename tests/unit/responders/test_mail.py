"""The mailto: notifier against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from responders.fakes.samples import NOW, route_request
from responders.notice import Notice
from tests.support.responders_mail import notice


class TestNotice:
    def test_facts_say_who_where_what_how_long_mode_and_window(self) -> None:
        """The notice names the author, channel, wait, mode and reply window."""
        facts = dict(notice("marta@example.com").facts())
        expected = {
            "From": "Ana Lopez",
            "Channel": "Facebook Messenger (acme.it.facebook)",
            "Waiting": "1 h 05 min",
            "Mode": "reduced",
            "Reply window closes": "Tue 24 Nov 21:09",
        }
        assert expected == {key: facts[key] for key in expected}

    def test_html_escapes_customer_text(self) -> None:
        """Customer text cannot inject markup into the e-mail."""
        request = route_request(["mailto:m@example.com"], text="<script>alert(1)</script>")
        html = Notice(
            route=request, member=request.to[0], uri="mailto:m@example.com", now=NOW
        ).html()
        assert "<script>" not in html

