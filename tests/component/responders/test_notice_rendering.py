"""What staff read: customer names and words come out inert in every notifier, and normal text stays readable."""

from __future__ import annotations

import aiohttp

from responders.config import ResponderSettings
from responders.fakes import FakeTelegram
from responders.fakes.samples import fixed_clock
from responders.telegram import TelegramNotifier
from tests.support.responders_notice_rendering import HTML, MARKDOWN, notice


class TestTelegram:
    async def test_notice_is_plain_text(self, session: aiohttp.ClientSession) -> None:
        """Telegram notices carry no parse_mode: the customer's markup arrives as written."""
        fake = FakeTelegram({"123:abc"})
        fake.add_message(99887766, 1)
        async with fake:
            settings = ResponderSettings(
                telegram_base_url=fake.url, telegram_notify_token="123:abc", egress_allow=["127.0.0.1"]
            )
            await TelegramNotifier(settings, fixed_clock()).send(notice("telegram:99887766", text=MARKDOWN + HTML), session)
            [request] = await fake.wait_for_requests(1)
        body = request.json()
        assert (False, True) == ("parse_mode" in body, MARKDOWN + HTML in body["text"])

