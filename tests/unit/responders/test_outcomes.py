"""Each platform's error answers, read into outcomes (table-driven)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from multidict import CIMultiDict

from responders.base import (
    OPS_ALERT,
    HttpAnswer,
    Permanent,
    Retry,
    retry_after,
    wait_until,
)
from responders.messenger import graph_outcome
from responders.telegram import telegram_outcome
from responders.whatsapp import whatsapp_outcome
from responders.x import x_outcome

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 3, 29, 1, 30, tzinfo=ROME).timestamp()
LIMIT = 900.0


def answer(status: int, body: object = None, **headers: str) -> HttpAnswer:
    raw = orjson.dumps(body) if body is not None else b""
    return HttpAnswer(
        status, CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}), raw
    )


def graph(status: int, code: int, subcode: int | None = None) -> HttpAnswer:
    error: dict[str, object] = {"message": "x", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return answer(status, {"error": error})


def kind(outcome: object) -> str:
    if isinstance(outcome, Retry):
        return "retry"
    assert isinstance(outcome, Permanent)
    return "alert" if outcome.alert_operations else "permanent"


class TestGraphOutcome:
    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            pytest.param(graph(400, 10, 2018278), "permanent", id="outside_window_10_2018278"),
            pytest.param(graph(400, 551, 1545041), "permanent", id="person_unavailable_551"),
            pytest.param(graph(400, 100, 2018001), "permanent", id="no_matching_user_100_2018001"),
            pytest.param(graph(400, 1), "retry", id="unknown_1"),
            pytest.param(graph(400, 2), "retry", id="temporary_2"),
            pytest.param(graph(400, 4), "retry", id="app_limit_4"),
            pytest.param(graph(400, 613), "retry", id="rate_limit_613"),
            pytest.param(graph(400, 190), "alert", id="expired_token_190"),
            pytest.param(graph(403, 200), "alert", id="permission_200"),
            pytest.param(graph(403, 299), "alert", id="permission_299"),
            pytest.param(answer(502, None), "retry", id="bad_gateway_no_envelope"),
            pytest.param(
                answer(400, {"error": {"code": 12345}}), "permanent", id="unknown_code_on_400"
            ),
        ],
    )
    def test_error_codes_map_to_outcomes(self, response: HttpAnswer, expected: str) -> None:
        """Graph error codes (docs/platforms.md, "Sending") map to retry, permanent or an operations alert."""
        assert expected == kind(graph_outcome(response, "facebook", NOW, LIMIT))

    def test_alert_reason_names_operations(self) -> None:
        """A token/permission error says so in its reason."""
        assert graph_outcome(graph(400, 190), "facebook", NOW, LIMIT).reason.endswith(OPS_ALERT)


class TestWhatsAppOutcome:
    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            pytest.param(131047, "permanent", id="re_engagement_131047"),
            pytest.param(131026, "permanent", id="undeliverable_131026"),
            pytest.param(131049, "permanent", id="meta_chose_not_131049"),
            pytest.param(130429, "retry", id="throughput_130429"),
            pytest.param(131056, "retry", id="pair_rate_131056"),
            pytest.param(4, "retry", id="app_limit_4"),
            pytest.param(80007, "retry", id="waba_limit_80007"),
            pytest.param(131048, "alert", id="spam_limit_131048"),
            pytest.param(0, "alert", id="auth_0"),
            pytest.param(190, "alert", id="token_190"),
            pytest.param(368, "alert", id="policy_block_368"),
        ],
    )
    def test_error_codes_map_to_outcomes(self, code: int, expected: str) -> None:
        """Cloud API codes (docs/platforms.md, "Sending") map to retry, permanent or stop-and-alert."""
        assert expected == kind(whatsapp_outcome(graph(400, code), NOW, LIMIT))

    def test_pair_rate_limit_waits_six_seconds(self) -> None:
        """131056 (same recipient too fast) waits the pair interval when no header says otherwise."""
        assert Retry(
            6.0, "whatsapp: error 131056 (pair rate limit (same recipient))"
        ) == whatsapp_outcome(graph(400, 131056), NOW, LIMIT)

    def test_outside_window_reason_asks_for_template_or_human(self) -> None:
        """131047 says a template or a human is needed."""
        assert (
            "outside 24 h window: template or human needed"
            in whatsapp_outcome(graph(400, 131047), NOW, LIMIT).reason
        )


class TestXOutcome:
    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            pytest.param(
                answer(429, {}, x_rate_limit_reset=str(int(NOW) + 120)),
                Retry(120.0, "x: rate limit exceeded (HTTP 429)"),
                id="reset_in_two_minutes",
            ),
            pytest.param(
                answer(429, {}, x_rate_limit_reset=str(int(NOW) - 5)),
                Retry(0.0, "x: rate limit exceeded (HTTP 429)"),
                id="reset_already_passed",
            ),
            pytest.param(
                answer(429, {}, x_rate_limit_reset=str(int(NOW) + 86400)),
                Retry(LIMIT, "x: rate limit exceeded (HTTP 429)"),
                id="reset_far_away_clamped",
            ),
            pytest.param(
                answer(429, {}, Retry_After="7"),
                Retry(7.0, "x: rate limit exceeded (HTTP 429)"),
                id="no_reset_uses_retry_after",
            ),
            pytest.param(answer(503, {}), Retry(None, "x: HTTP 503"), id="unavailable"),
            pytest.param(
                answer(401, {}), Permanent(f"x: HTTP 401: {OPS_ALERT}", True), id="bad_token"
            ),
            pytest.param(answer(403, {}), Permanent("x: HTTP 403"), id="dm_not_permitted"),
        ],
    )
    def test_answers_map_to_outcomes(self, response: HttpAnswer, expected: object) -> None:
        """X waits until x-rate-limit-reset (epoch seconds) on 429."""
        assert expected == x_outcome(response, NOW, LIMIT)


class TestTelegramOutcome:
    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            pytest.param(
                answer(
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 99",
                        "parameters": {"retry_after": 17},
                    },
                ),
                Retry(17.0, "telegram: too many requests (429)"),
                id="retry_after_parameter_not_description",
            ),
            pytest.param(
                answer(502, {"ok": False, "error_code": 502}),
                Retry(None, "telegram: HTTP 502"),
                id="bad_gateway",
            ),
            pytest.param(
                answer(403, {"ok": False, "error_code": 403}),
                Permanent("telegram: error 403"),
                id="blocked_by_user",
            ),
            pytest.param(
                answer(401, {"ok": False, "error_code": 401}),
                Permanent(f"telegram: error 401: {OPS_ALERT}", True),
                id="bad_token",
            ),
        ],
    )
    def test_answers_map_to_outcomes(self, response: HttpAnswer, expected: object) -> None:
        """Telegram honours parameters.retry_after, never the description text."""
        assert expected == telegram_outcome(response, NOW, LIMIT)


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("120", 120.0, id="delay_seconds"),
            pytest.param(" 5 ", 5.0, id="seconds_with_spaces"),
            pytest.param("0", 0.0, id="zero"),
            pytest.param("100000", LIMIT, id="seconds_clamped"),
            pytest.param("Sun, 29 Mar 2026 00:32:00 GMT", 120.0, id="http_date_two_minutes_ahead"),
            pytest.param("Fri, 31 Dec 1999 23:59:59 GMT", 0.0, id="http_date_in_the_past"),
            pytest.param("Sun, 29 Mar 2026 23:00:00 GMT", LIMIT, id="http_date_clamped"),
            pytest.param("soon", None, id="garbage"),
            pytest.param("-5", None, id="negative_is_garbage"),
            pytest.param("1.5", None, id="fraction_is_garbage"),
            pytest.param("٣", None, id="non_ascii_digit"),
            pytest.param("", None, id="empty"),
            pytest.param(None, None, id="missing"),
        ],
    )
    def test_parses_seconds_and_dates(self, value: str | None, expected: float | None) -> None:
        """Retry-After is delay-seconds or an HTTP-date (RFC 9110), clamped; else None."""
        assert expected == retry_after(value, NOW, LIMIT)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(str(int(NOW) + 30), 30.0, id="epoch_ahead"),
            pytest.param("not-a-number", None, id="garbage"),
            pytest.param(None, None, id="missing"),
        ],
    )
    def test_wait_until_epoch(self, value: str | None, expected: float | None) -> None:
        """An epoch-seconds reset is read as the wait until then."""
        assert expected == wait_until(value, NOW, LIMIT)


class TestPlatformDescription:
    @pytest.mark.parametrize(
        ("description", "reason"),
        [
            pytest.param("Bad Request: chat not found", "telegram: error 400: Bad Request: chat not found", id="kept"),
            pytest.param("Bad Request:\nchat\tnot found", "telegram: error 400: Bad Request: chat not found", id="one_line"),
            pytest.param("token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw refused",
                         "telegram: error 400: token … refused", id="token_cut_out"),
            pytest.param("word " * 100, "telegram: error 400: " + ("word " * 32)[:159] + "…", id="bounded"),
        ],
    )
    def test_the_platforms_description_is_kept_on_one_line_without_secrets(self, description: str, reason: str) -> None:
        """What staff read of a refused acknowledgment names the platform's own words, bounded."""
        body = orjson.dumps({"ok": False, "error_code": 400, "description": description})
        outcome = telegram_outcome(HttpAnswer(400, {}, body), 0.0, 60.0)
        assert Permanent(reason) == outcome
