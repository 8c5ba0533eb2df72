"""The Telegram sender's request body: the chat and the quoted message as the Bot API types them."""

from __future__ import annotations

import pytest

from responders.config import ResponderSettings
from responders.fakes.samples import ack_request, fixed_clock
from responders.telegram import TelegramSender


def telegram_ack(recipient: str, reply_to: str | None) -> dict[str, object]:
    request = ack_request(channel="telegram", account="acme_it_bot", kind="dm", recipient=recipient,
                          reply_to=reply_to, conversation=f"tg:acme_help_bot:{recipient}", window_closes=None)
    return TelegramSender(ResponderSettings(), fixed_clock()).body(request)


class TestTelegramBody:
    @pytest.mark.parametrize(
        ("recipient", "reply_to", "chat_id", "quoted"),
        [
            pytest.param("6123456789", "4182", 6123456789, 4182, id="private_chat_beyond_32_bits"),
            pytest.param("-1001234567890", "42", -1001234567890, 42, id="supergroup_negative_id"),
        ],
    )
    def test_chat_and_quote_are_integers(self, recipient: str, reply_to: str, chat_id: int, quoted: int) -> None:
        """chat_id and reply_parameters.message_id go out as JSON integers, as the Bot API requires."""
        body = telegram_ack(recipient, reply_to)
        assert (chat_id, {"message_id": quoted, "allow_sending_without_reply": True}) == (
            body["chat_id"], body["reply_parameters"],
        )

    @pytest.mark.parametrize("reply_to", [None, "6123456789:4182"], ids=["none", "not_an_integer"])
    def test_no_quote_without_an_integer_message_id(self, reply_to: str | None) -> None:
        """A message id the Bot API would refuse is not quoted: the acknowledgment still arrives."""
        assert "reply_parameters" not in telegram_ack("6123456789", reply_to)
