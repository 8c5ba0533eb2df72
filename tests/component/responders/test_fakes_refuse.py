"""The fake platforms refuse what the real platforms refuse, and accept the valid request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from responders.fakes import FakeGraph, FakeTelegram, FakeX
from responders.fakes.samples import NOW, fixed_clock
from tests.support.responders_fakes_refuse import (
    BOT_TOKEN,
    PRIVATE_CHAT,
    PSID,
    SUPERGROUP,
    TOKEN,
)

CUSTOMER_MESSAGE = 4182


GROUP_MESSAGE = 77


UNKNOWN_CHAT = 6123456780


STALE_PSID = "24680135791357914"  # last wrote 25 hours ago


SILENT_PSID = "24680135791357915"  # last wrote 8 days ago


UNKNOWN_PSID = "24680135791357999"


IGSID = "17841400123456789"


WA_ID = "447700900123"


STALE_WA_ID = "447700900124"


WAMID = "wamid.HBgLMTU1NTAwMDExMTEVAgASGBQzQUQ2"


COMMENT = "122105832516176548_1184367282805342"


OLD_COMMENT = "122105832516176548_1184367282805343"  # written 8 days ago


WEEK_OLD_COMMENT = "122105832516176548_1184367282805344"  # written 6 days ago


IG_COMMENT = "17870913679156914"


UNKNOWN_COMMENT = "122105832516176548_1184367282805399"


# X: numeric string ids of 19 digits.
X_USER = "1602345678901234567"


X_UNKNOWN_USER = "1602345678901234568"


TWEET = "1790000000000000002"


UNKNOWN_TWEET = "1790000000000000003"


# -- Telegram ----------------------------------------------------------------------------


def telegram() -> FakeTelegram:
    """The fake Bot API knowing the customer's private chat and a public supergroup."""
    fake = FakeTelegram({BOT_TOKEN})
    fake.add_message(PRIVATE_CHAT, CUSTOMER_MESSAGE)
    fake.add_message(SUPERGROUP, GROUP_MESSAGE, "supergroup")
    fake.add_chat(SUPERGROUP, "supergroup", username="@acme_fans")
    return fake


def bot_answer(data: dict[str, Any]) -> str:
    """The answered chat's type, or the error description."""
    return data["result"]["chat"]["type"] if data.get("ok") else data["description"]


def quoting(message_id: object, **more: object) -> dict[str, Any]:
    return {"reply_parameters": {"message_id": message_id, **more}}


CHAT_NOT_FOUND = (400, "Bad Request: chat not found")


NOT_A_NUMBER = (400, 'Bad Request: field "message_id" must be a valid Number')


REPLIED_NOT_FOUND = (400, "Bad Request: message to be replied not found")


TEXT_EMPTY = (400, "Bad Request: message text is empty")


class TestFakeTelegramRefuses:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(CUSTOMER_MESSAGE)}, (200, "private"), id="valid_reply_in_private_chat"),
            pytest.param({"chat_id": SUPERGROUP, **quoting(GROUP_MESSAGE)}, (200, "supergroup"), id="valid_reply_in_supergroup"),
            pytest.param({"chat_id": str(SUPERGROUP)}, (200, "supergroup"), id="chat_id_as_integer_string"),
            pytest.param({"chat_id": "@acme_fans"}, (200, "supergroup"), id="chat_id_as_public_username"),
            pytest.param({"chat_id": UNKNOWN_CHAT}, CHAT_NOT_FOUND, id="unknown_chat"),
            pytest.param({"chat_id": "@nobody_here"}, CHAT_NOT_FOUND, id="unknown_username"),
            pytest.param({"chat_id": float(PRIVATE_CHAT)}, CHAT_NOT_FOUND, id="chat_id_float"),
            pytest.param({"chat_id": True}, CHAT_NOT_FOUND, id="chat_id_bool"),
            pytest.param({"chat_id": [PRIVATE_CHAT]}, CHAT_NOT_FOUND, id="chat_id_list"),
            pytest.param({"chat_id": "tg:6123456789"}, CHAT_NOT_FOUND, id="chat_id_other_string"),
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(str(CUSTOMER_MESSAGE))}, NOT_A_NUMBER, id="message_id_string"),
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(True)}, NOT_A_NUMBER, id="message_id_bool"),
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(4182.5)}, NOT_A_NUMBER, id="message_id_float"),
            pytest.param({"chat_id": PRIVATE_CHAT, "reply_parameters": {}}, NOT_A_NUMBER, id="message_id_missing"),
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(9999)}, REPLIED_NOT_FOUND, id="unknown_message"),
            pytest.param({"chat_id": PRIVATE_CHAT, **quoting(GROUP_MESSAGE)}, REPLIED_NOT_FOUND, id="message_of_another_chat"),
            pytest.param(
                {"chat_id": PRIVATE_CHAT, **quoting(9999, allow_sending_without_reply=True)},
                (200, "private"),
                id="unknown_message_allowed_without_reply",
            ),
            pytest.param({"chat_id": PRIVATE_CHAT, "text": ""}, TEXT_EMPTY, id="empty_text"),
            pytest.param({"chat_id": PRIVATE_CHAT, "text": "x" * 4097}, TEXT_EMPTY, id="text_over_4096"),
            pytest.param({"chat_id": PRIVATE_CHAT, "text": "x" * 4096}, (200, "private"), id="text_of_4096"),
        ],
    )
    async def test_send_message(
        self, body: dict[str, Any], expected: tuple[int, str], session: aiohttp.ClientSession
    ) -> None:
        """sendMessage is answered as the Bot API answers it: the chat's type, or the refusal."""
        async with telegram() as fake:
            async with session.post(
                f"{fake.url}/bot{BOT_TOKEN}/sendMessage", json={"text": "Grazie!", **body}
            ) as answer:
                actual = (answer.status, bot_answer(await answer.json()))
        assert expected == actual

    async def test_chat_id_string_is_answered_as_the_integer_id(self, session: aiohttp.ClientSession) -> None:
        """A chat named by a string is answered with its int64 id, and the sent message can be quoted."""
        async with telegram() as fake:
            url = f"{fake.url}/bot{BOT_TOKEN}/sendMessage"
            async with session.post(url, json={"chat_id": "@acme_fans", "text": "Ciao"}) as answer:
                result = (await answer.json())["result"]
            async with session.post(
                url, json={"chat_id": SUPERGROUP, "text": "Eccoci", **quoting(result["message_id"])}
            ) as answer:
                quoted = answer.status
        assert (SUPERGROUP, 200) == (result["chat"]["id"], quoted)

    async def test_injected_failure_comes_before_validation(self, session: aiohttp.ClientSession) -> None:
        """A queued failure is answered even to a request the fake would refuse."""
        async with telegram() as fake:
            fake.fail_next("rate_limit")
            async with session.post(
                f"{fake.url}/bot{BOT_TOKEN}/sendMessage", json={"chat_id": UNKNOWN_CHAT, "text": "x"}
            ) as answer:
                actual = answer.status
        assert 429 == actual


# -- Graph: Messenger, Instagram, WhatsApp ------------------------------------------------


def graph(clock: Callable[[], float] | None = None) -> FakeGraph:
    """The fake Graph API at ``NOW`` (or ``clock``), knowing customers and comments of several ages."""
    fake = FakeGraph({TOKEN}, clock=clock or fixed_clock())
    for customer, hours in ((PSID, 1), (STALE_PSID, 25), (SILENT_PSID, 8 * 24), (IGSID, 1), (WA_ID, 1), (STALE_WA_ID, 25)):
        fake.add_customer(customer, NOW - timedelta(hours=hours))
    for comment, hours in ((COMMENT, 1), (IG_COMMENT, 1), (OLD_COMMENT, 8 * 24), (WEEK_OLD_COMMENT, 6 * 24)):
        fake.add_comment(comment, NOW - timedelta(hours=hours))
    return fake


def graph_error(data: dict[str, Any]) -> tuple[int, int | None] | None:
    """The error's (code, subcode), or None for a success."""
    error = data.get("error")
    return (error["code"], error.get("error_subcode")) if error else None


async def post_graph(session: aiohttp.ClientSession, fake: FakeGraph, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(
        f"{fake.url}/v25.0/{path}", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as answer:
        return answer.status, graph_error(await answer.json())


def dm(recipient: str, **more: object) -> dict[str, Any]:
    return {"recipient": {"id": recipient}, "messaging_type": "RESPONSE", "message": {"text": "Grazie!"}, **more}


def private_reply(comment_id: str) -> dict[str, Any]:
    return {"recipient": {"comment_id": comment_id}, "message": {"text": "Ti scriviamo in privato."}}


def whatsapp(to: object = WA_ID, **more: object) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": "Ricevuto!", "preview_url": False},
        **more,
    }


ACCEPTED = (200, None)


NO_MATCHING_USER = (400, (100, 2018001))


OUTSIDE_WINDOW = (400, (10, 2018278))


UNKNOWN_OBJECT = (400, (100, 33))


INVALID_PARAMETER = (400, (100, None))


UNDELIVERABLE = (400, (131026, None))


RE_ENGAGEMENT = (400, (131047, None))


class TestFakeGraphRefuses:
    @pytest.mark.parametrize(
        ("path", "body", "expected"),
        [
            pytest.param("PAGE_111/messages", dm(PSID), ACCEPTED, id="dm_inside_24h"),
            pytest.param("me/messages", dm(IGSID), ACCEPTED, id="instagram_dm_inside_24h"),
            pytest.param("PAGE_111/messages", dm(UNKNOWN_PSID), NO_MATCHING_USER, id="dm_to_unknown_user"),
            pytest.param("PAGE_111/messages", dm(STALE_PSID), OUTSIDE_WINDOW, id="dm_after_24h"),
            pytest.param(
                "PAGE_111/messages",
                dm(STALE_PSID, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"),
                ACCEPTED,
                id="human_agent_tag_after_24h",
            ),
            pytest.param(
                "PAGE_111/messages",
                dm(SILENT_PSID, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"),
                OUTSIDE_WINDOW,
                id="human_agent_tag_after_7_days",
            ),
            pytest.param(
                "PAGE_111/messages",
                dm(PSID, messaging_type="MESSAGE_TAG", tag="CONFIRMED_EVENT_UPDATE"),
                INVALID_PARAMETER,
                id="unknown_tag",
            ),
            pytest.param("PAGE_111/messages", private_reply(COMMENT), ACCEPTED, id="private_reply_to_fresh_comment"),
            pytest.param("PAGE_111/messages", private_reply(WEEK_OLD_COMMENT), ACCEPTED, id="private_reply_within_7_days"),
            pytest.param("PAGE_111/messages", private_reply(UNKNOWN_COMMENT), UNKNOWN_OBJECT, id="private_reply_to_unknown_comment"),
            pytest.param("PAGE_111/messages", private_reply(OLD_COMMENT), OUTSIDE_WINDOW, id="private_reply_after_7_days"),
            pytest.param(f"{COMMENT}/comments", {"message": "Grazie!"}, ACCEPTED, id="public_reply_facebook"),
            pytest.param(f"{IG_COMMENT}/replies", {"message": "Grazie!"}, ACCEPTED, id="public_reply_instagram"),
            pytest.param(f"{UNKNOWN_COMMENT}/comments", {"message": "Grazie!"}, UNKNOWN_OBJECT, id="public_reply_to_unknown_facebook_comment"),
            pytest.param(f"{UNKNOWN_COMMENT}/replies", {"message": "Grazie!"}, UNKNOWN_OBJECT, id="public_reply_to_unknown_instagram_comment"),
            pytest.param("PNID_5/messages", whatsapp(context={"message_id": WAMID}), ACCEPTED, id="whatsapp_reply_inside_24h"),
            pytest.param("PNID_5/messages", whatsapp(), ACCEPTED, id="whatsapp_without_context"),
            pytest.param(
                "PNID_5/messages", whatsapp(context={"message_id": "wamid.HBgL-_x/+="}), ACCEPTED, id="whatsapp_urlsafe_wamid"
            ),
            pytest.param("PNID_5/messages", whatsapp("447700900999"), UNDELIVERABLE, id="whatsapp_to_unknown_customer"),
            pytest.param("PNID_5/messages", whatsapp(STALE_WA_ID), RE_ENGAGEMENT, id="whatsapp_text_after_24h"),
            pytest.param("PNID_5/messages", whatsapp("+447700900123"), INVALID_PARAMETER, id="whatsapp_to_with_plus"),
            pytest.param("PNID_5/messages", whatsapp(447700900123), INVALID_PARAMETER, id="whatsapp_to_as_number"),
            pytest.param("PNID_5/messages", whatsapp(context={"message_id": "m_abc123"}), INVALID_PARAMETER, id="whatsapp_context_not_a_wamid"),
            pytest.param("PNID_5/messages", whatsapp(context={"message_id": "wamid."}), INVALID_PARAMETER, id="whatsapp_context_empty_wamid"),
            pytest.param("PNID_5/messages", whatsapp(context={"message_id": "wamid.HBg L"}), INVALID_PARAMETER, id="whatsapp_context_with_space"),
            pytest.param("PNID_5/messages", whatsapp(context={"message_id": 17}), INVALID_PARAMETER, id="whatsapp_context_number"),
        ],
    )
    async def test_send(
        self, path: str, body: dict[str, Any], expected: tuple[int, Any], session: aiohttp.ClientSession
    ) -> None:
        """Each send is accepted, or refused with Graph's code and subcode."""
        async with graph() as fake:
            actual = await post_graph(session, fake, path, body)
        assert expected == actual

    async def test_one_private_reply_per_comment(self, session: aiohttp.ClientSession) -> None:
        """A comment's second private reply is refused with code 10."""
        async with graph() as fake:
            first = await post_graph(session, fake, "PAGE_111/messages", private_reply(COMMENT))
            second = await post_graph(session, fake, "PAGE_111/messages", private_reply(COMMENT))
        assert [ACCEPTED, (400, (10, None))] == [first, second]

    async def test_hidden_comment_takes_no_public_reply(self, session: aiohttp.ClientSession) -> None:
        """A known but hidden comment is refused a public reply."""
        fake = graph()
        fake.hidden_comments = frozenset({COMMENT})
        async with fake:
            actual = await post_graph(session, fake, f"{COMMENT}/comments", {"message": "Grazie!"})
        assert INVALID_PARAMETER == actual

    async def test_window_closes_on_the_fakes_clock(self, session: aiohttp.ClientSession) -> None:
        """The same customer is inside the window at one instant and outside 24 h later."""
        now = [NOW.timestamp()]
        async with graph(lambda: now[0]) as fake:
            inside = await post_graph(session, fake, "PAGE_111/messages", dm(PSID))
            now[0] += 24 * 3600
            outside = await post_graph(session, fake, "PAGE_111/messages", dm(PSID))
            fake.add_customer(PSID, NOW + timedelta(hours=24))  # the customer wrote again
            reopened = await post_graph(session, fake, "PAGE_111/messages", dm(PSID))
        assert [ACCEPTED, OUTSIDE_WINDOW, ACCEPTED] == [inside, outside, reopened]

    async def test_whatsapp_refusal_carries_error_data(self, session: aiohttp.ClientSession) -> None:
        """WhatsApp refusals carry error_data.details, as the Cloud API's do."""
        async with graph() as fake:
            async with session.post(
                f"{fake.url}/v25.0/PNID_5/messages", json=whatsapp(STALE_WA_ID), headers={"Authorization": f"Bearer {TOKEN}"}
            ) as answer:
                error = (await answer.json())["error"]
        assert ("whatsapp", True) == (error["error_data"]["messaging_product"], bool(error["error_data"]["details"]))


# -- X -----------------------------------------------------------------------------------


def x() -> FakeX:
    """The fake X API knowing one customer and one post."""
    fake = FakeX({TOKEN}, clock=fixed_clock())
    fake.add_user(X_USER)
    fake.add_tweet(TWEET)
    return fake


def x_answer(status: int, data: dict[str, Any]) -> tuple[int, str]:
    """The status with the problem's detail, or with ``"ok"`` for a success."""
    return status, data.get("detail", "ok")


class TestFakeXRefuses:
    @pytest.mark.parametrize(
        ("participant", "text", "expected"),
        [
            pytest.param(X_USER, "Grazie!", (201, "ok"), id="dm_to_known_user"),
            pytest.param(X_USER, "x" * 10000, (201, "ok"), id="dm_of_10000_chars"),
            pytest.param(X_UNKNOWN_USER, "Grazie!", (400, f"Could not find user with participant_id: [{X_UNKNOWN_USER}]."), id="dm_to_unknown_user"),
            pytest.param("cust_777", "Grazie!", (400, "The `participant_id` path parameter value [cust_777] is not valid."), id="dm_to_non_numeric_id"),
            pytest.param(X_USER, "x" * 10001, (400, "text is required (1-10000 chars)"), id="dm_over_10000_chars"),
            pytest.param(X_USER, "", (400, "text is required (1-10000 chars)"), id="dm_empty"),
        ],
    )
    async def test_dm(
        self, participant: str, text: str, expected: tuple[int, str], session: aiohttp.ClientSession
    ) -> None:
        """A DM goes only to a known user with a numeric id, with 1-10000 characters."""
        async with x() as fake:
            async with session.post(
                f"{fake.url}/2/dm_conversations/with/{participant}/messages",
                json={"text": text},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as answer:
                actual = x_answer(answer.status, await answer.json())
        assert expected == actual

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            pytest.param({"text": "Grazie!", "reply": {"in_reply_to_tweet_id": TWEET}}, (201, "ok"), id="reply_to_known_post"),
            pytest.param({"text": "Novità"}, (201, "ok"), id="post_without_reply"),
            pytest.param({"text": "x" * 280}, (201, "ok"), id="post_of_280_chars"),
            pytest.param(
                {"text": "Grazie!", "reply": {"in_reply_to_tweet_id": UNKNOWN_TWEET}},
                (400, f"Could not find tweet with in_reply_to_tweet_id: [{UNKNOWN_TWEET}]."),
                id="reply_to_unknown_post",
            ),
            pytest.param(
                {"text": "Grazie!", "reply": {"in_reply_to_tweet_id": "t_201"}},
                (400, "The `in_reply_to_tweet_id` value [t_201] is not valid: a numeric string."),
                id="reply_to_non_numeric_id",
            ),
            pytest.param(
                {"text": "Grazie!", "reply": {"in_reply_to_tweet_id": int(TWEET)}},
                (400, f"The `in_reply_to_tweet_id` value [{TWEET}] is not valid: a numeric string."),
                id="reply_to_id_as_number",
            ),
            pytest.param(
                {"text": "Grazie!", "reply": {}},
                (400, "The `in_reply_to_tweet_id` value [None] is not valid: a numeric string."),
                id="reply_without_id",
            ),
            pytest.param({"text": "x" * 281}, (400, "text is required (1-280 chars)"), id="post_over_280_chars"),
        ],
    )
    async def test_post(
        self, body: dict[str, Any], expected: tuple[int, str], session: aiohttp.ClientSession
    ) -> None:
        """A reply answers only a known post named by a numeric string; a post has 1-280 characters."""
        async with x() as fake:
            async with session.post(
                f"{fake.url}/2/tweets", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as answer:
                actual = x_answer(answer.status, await answer.json())
        assert expected == actual

    async def test_own_post_can_be_replied_to(self, session: aiohttp.ClientSession) -> None:
        """A post the fake accepted exists afterwards: a reply to it is accepted."""
        async with x() as fake:
            url, headers = f"{fake.url}/2/tweets", {"Authorization": f"Bearer {TOKEN}"}
            async with session.post(url, json={"text": "Novità"}, headers=headers) as answer:
                posted = (await answer.json())["data"]["id"]
            async with session.post(
                url, json={"text": "Seguito", "reply": {"in_reply_to_tweet_id": posted}}, headers=headers
            ) as answer:
                actual = answer.status
        assert (19, 201) == (len(posted), actual)

