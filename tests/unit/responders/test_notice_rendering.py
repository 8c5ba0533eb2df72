"""What staff read: customer names and words come out inert in every notifier, and normal text stays readable."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from responders.mail import mail_message
from responders.slack import slack_payload
from responders.teams import teams_payload
from tests.support.responders_notice_rendering import HTML, MARKDOWN, notice

MENTION = "<!channel> *URGENT* call me"


LINK = "<https://evil.example/login|reset your password here>"


NORMAL = "Il mio ordine non è arrivato, grazie & buona serata :)"


def slack_texts(payload: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each Slack text object of the payload as ``(type, text)``, by block; ``fallback`` is the top-level text."""
    blocks = payload["blocks"]
    return {
        "fallback": ("mrkdwn", payload["text"]),
        "header": (blocks[0]["text"]["type"], blocks[0]["text"]["text"]),
        "message": (blocks[1]["text"]["type"], blocks[1]["text"]["text"]),
        "facts": (blocks[2]["text"]["type"], blocks[2]["text"]["text"]),
    }


class TestSlack:
    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            pytest.param(MENTION, "&lt;!channel&gt; *URGENT* call me", id="channel_mention"),
            pytest.param(LINK, "&lt;https://evil.example/login|reset your password here&gt;", id="disguised_link"),
            pytest.param("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d", id="control_characters"),
            pytest.param(NORMAL, "Il mio ordine non è arrivato, grazie &amp; buona serata :)", id="normal_text"),
        ],
    )
    def test_customer_text_is_escaped_plain_text(self, text: str, shown: str) -> None:
        """The customer's words are plain_text with &, < and > escaped: no mention, no link, no formatting."""
        assert ("plain_text", shown) == slack_texts(slack_payload(notice(text=text)))["message"]

    @pytest.mark.parametrize(
        ("name", "shown"),
        [
            pytest.param(
                "<!here|Support> <https://evil.example|Ana>",
                "&lt;!here|Support&gt; &lt;https://evil.example|Ana&gt;",
                id="mention_and_link_in_name",
            ),
            pytest.param("Ana Lopez", "Ana Lopez", id="normal_name"),
        ],
    )
    def test_author_name_is_escaped_everywhere(self, name: str, shown: str) -> None:
        """The author's name is escaped in the notification text, the header and the facts."""
        texts = slack_texts(slack_payload(notice(author_name=name)))
        title = f"[New message] Facebook Messenger message from {shown} (care-it)"
        expected = (("mrkdwn", title), ("plain_text", title), True)
        assert expected == (texts["fallback"], texts["header"], f"From: {shown}\n" in texts["facts"][1])

    def test_reasons_are_escaped_plain_text(self) -> None:
        """A reason quoting the customer is escaped plain text, never mrkdwn."""
        facts = slack_texts(slack_payload(notice(reason=f"escalated: {MENTION}")))["facts"]
        assert ("plain_text", True, False) == (facts[0], "Why you: escalated: &lt;!channel&gt; *URGENT*" in facts[1], "<!" in facts[1])

    def test_escaped_text_still_fits_the_header(self) -> None:
        """Escaping never pushes the header over Slack's 150 characters nor cuts an entity in half."""
        header = slack_texts(slack_payload(notice(author_name="<" * 200)))["header"][1]
        assert (True, True) == (len(header) <= 150, header.endswith("&lt;…"))


def teams_elements(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every element of the card's body, text runs included."""
    elements: list[dict[str, Any]] = []
    for block in payload["attachments"][0]["content"]["body"]:
        elements.append(block)
        elements.extend(block.get("inlines", []))
        elements.extend(block.get("facts", []))
    return elements


class TestTeams:
    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({"text": MARKDOWN}, id="markdown_text"),
            pytest.param({"text": LINK}, id="angle_link_text"),
            pytest.param({"author_name": MARKDOWN}, id="markdown_name"),
            pytest.param({"reason": f"escalated: {MARKDOWN}"}, id="markdown_reason"),
        ],
    )
    def test_customer_content_only_in_text_runs(self, changes: dict[str, str]) -> None:
        """Customer content sits only in TextRuns (never read as Markdown), unchanged and readable."""
        attack = next(iter(changes.values())).removeprefix("escalated: ")
        carriers = [
            element for element in teams_elements(teams_payload(notice(**changes)))
            if attack in str(element.get("text", "")) + str(element.get("value", ""))
        ]
        assert (True, {"TextRun"}) == (bool(carriers), {element["type"] for element in carriers})

    def test_normal_text_reads_as_written(self) -> None:
        """An ordinary message is shown exactly as the customer wrote it."""
        texts = [e["text"] for e in teams_elements(teams_payload(notice(text=NORMAL))) if e["type"] == "TextRun"]
        assert NORMAL in texts

    def test_no_markdown_block_carries_customer_data(self) -> None:
        """No TextBlock or FactSet (the Markdown-reading elements) is left in the card."""
        types = {element["type"] for element in teams_elements(teams_payload(notice(text=MARKDOWN)))}
        assert set() == types & {"TextBlock", "FactSet", "Fact"}


class TestMail:
    @pytest.mark.parametrize(
        ("changes", "inert", "absent"),
        [
            pytest.param({"text": HTML}, "&lt;script&gt;alert(1)&lt;/script&gt;", "<script>", id="script_in_text"),
            pytest.param({"author_name": HTML}, "&lt;script&gt;", "<script>", id="script_in_name"),
            pytest.param({"reason": f"escalated: {HTML}"}, "&lt;a href=", "<a href='https://evil", id="link_in_reason"),
        ],
    )
    def test_html_part_is_autoescaped(self, changes: dict[str, str], inert: str, absent: str) -> None:
        """Markup in the customer's name, words or a reason is escaped in the HTML part."""
        html = notice("mailto:m@example.com", **changes).html()
        assert (True, False) == (inert in html, absent in html)

    def test_normal_text_reads_as_written(self) -> None:
        """An ordinary message keeps its words (only & becomes &amp;)."""
        html = notice("mailto:m@example.com", text=NORMAL).html()
        assert "Il mio ordine non è arrivato, grazie &amp; buona serata :)" in html

    def test_name_cannot_add_a_header(self) -> None:
        """A line break in the customer's name stays inside the subject: no extra header."""
        message = mail_message(notice("mailto:m@example.com", author_name="Ana\r\nBcc: evil@example.com"), "o@x.example")
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        expected = (None, "[New message] Facebook Messenger message from Ana Bcc: evil@example.com (care-it)")
        assert expected == (parsed["Bcc"], str(parsed["Subject"]).strip())

