"""The mailto: notifier against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import aiohttp

from responders.base import Delivered, Permanent, Retry
from responders.config import ResponderSettings
from responders.fakes import FakeSmtp
from responders.fakes.samples import fixed_clock
from responders.fakes.smtp import _free_port
from responders.mail import MailNotifier
from tests.support.responders_mail import CLAIM, notice


def notifier(port: int) -> MailNotifier:
    settings = ResponderSettings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_from="offhours@acme.example", smtp_timeout=5
    )
    return MailNotifier(settings, fixed_clock())


class TestMailNotifier:
    async def test_sends_plain_text_and_html_with_the_claim_link(
        self, session: aiohttp.ClientSession
    ) -> None:
        """One multipart message: both parts carry the customer's words, the wait and the claim link."""
        async with FakeSmtp() as smtp:
            outcome = await notifier(smtp.port).send(notice("marta@example.com"), session)
            message = await smtp.wait_for_message()
        plain = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert Delivered(None) == outcome
        assert "[New message] Facebook Messenger message from Ana Lopez (care-it)" == message["Subject"]
        assert "marta@example.com" == message["To"]
        for part in (plain, html):
            assert "Il mio ordine non è arrivato" in part
            assert "1 h 05 min" in part
            assert "reduced" in part
        assert CLAIM in plain
        assert CLAIM.replace("&", "&amp;") in html

    async def test_refused_recipient_is_permanent(self, session: aiohttp.ClientSession) -> None:
        """A 550 for the recipient is Permanent: retrying the same address cannot help."""
        async with FakeSmtp(refuse={"gone@example.com"}) as smtp:
            outcome = await notifier(smtp.port).send(notice("gone@example.com"), session)
        assert Permanent("mail: recipient refused ([550])") == outcome

    async def test_unreachable_server_is_retry(self, session: aiohttp.ClientSession) -> None:
        """No SMTP server listening is a Retry."""
        outcome = await notifier(_free_port()).send(notice("marta@example.com"), session)
        assert isinstance(outcome, Retry)

