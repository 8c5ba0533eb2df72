"""Tests for triage.acks: acknowledgment texts, their languages, formats and sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from babel import Locale

from schedules import Team, TriageOptions
from schedules.model import WeeklyHours
from tests.support.policy_fixtures import ROME, local, small_coverage
from triage.acks import (
    ACK_KINDS,
    ACK_MAX_CHARS,
    DEFAULT_LANGUAGES,
    AckFacts,
    AckTemplateError,
    AckWriter,
    format_moment,
)

PUBLIC_MAX_CHARS = 280  # X's limit, the tightest for a public reply

EVENING = local("2026-11-23 22:14")
NEXT_OPEN = local("2026-11-24 09:00")
REDUCED = AckFacts(
    mode="reduced",
    at=EVENING,
    next_open=NEXT_OPEN,
    reply_within=timedelta(minutes=40),
    reply_by=EVENING + timedelta(minutes=40),
    staff_name="Marta Rossi",
    customer_name="Ana Lopez",
)
CLOSED = AckFacts(
    mode="closed",
    at=local("2026-11-29 10:00"),
    next_open=local("2026-11-30 09:00"),
    reply_within=timedelta(hours=2),
    reply_by=local("2026-11-30 11:00"),
    customer_name="Ana Lopez",
)


def team_with(triage: str = "", locale: str = "it") -> Team:
    team = small_coverage(triage).teams["desk"]
    if locale != "it":
        team = Team("desk", timezone=ROME, hours=team.hours, name=team.name, locale=locale, triage=team.triage)
    return team


def templates_yaml(lang: str, kind: str, source: str) -> str:
    return f"      templates:\n        {lang}:\n          {kind}: |-\n            {source}\n"


class TestFormatMoment:
    @pytest.mark.parametrize(
        ("locale", "expected"),
        [
            pytest.param("it", "lunedì 30 marzo alle 08:30", id="it"),
            pytest.param("en", "Monday, March 30 at 8:30\u202fAM", id="en"),
            pytest.param("es", "lunes, 30 de marzo a las 8:30", id="es"),
            pytest.param("fr", "lundi 30 mars à 08:30", id="fr"),
            pytest.param("de", "Montag, 30. März um 08:30", id="de"),
        ],
    )
    def test_local_day_and_time(self, locale: str, expected: str) -> None:
        """An instant reads as the team's local weekday, day, month and time, without the year."""
        instant = datetime(2026, 3, 30, 6, 30, tzinfo=UTC)  # the day after Rome's spring change
        assert expected == format_moment(instant, ROME, Locale.parse(locale))


class TestAckWriter:
    @pytest.mark.parametrize(
        ("event_lang", "team_locale", "expected"),
        [
            pytest.param("en", "it", "en", id="event_language_has_template"),
            pytest.param("es-ES", "it", "es", id="event_language_with_region"),
            pytest.param("pt", "it", "it", id="event_language_without_template_team_locale"),
            pytest.param(None, "it", "it", id="no_event_language_team_locale"),
            pytest.param(None, "pt", "en", id="neither_has_template_english"),
        ],
    )
    def test_language_choice(self, event_lang: str | None, team_locale: str, expected: str) -> None:
        """The event's language when a template exists for it, else the team's locale, else English."""
        assert expected == AckWriter(team_with(locale=team_locale)).write("dm", event_lang, REDUCED).lang

    @pytest.mark.parametrize(
        ("lang", "kind", "facts", "expected"),
        [
            pytest.param(
                "it", "dm", REDUCED,
                "Ciao Ana, grazie per averci scritto. Marta del nostro team serale ti risponderà entro circa "
                "40 minuti (entro le 22:54). Non serve scriverci di nuovo: il tuo messaggio è già in coda.",
                id="it_dm_reduced",
            ),
            pytest.param(
                "en", "dm", CLOSED,
                "Hi Ana, thanks for writing to us. We are closed right now. A person from Sportello will answer "
                "from Monday, November 30 at 9:00 AM. No need to write again: your message is already in our queue.",
                id="en_dm_closed",
            ),
            pytest.param(
                "it", "public", CLOSED,
                "Grazie per averci scritto! Ora siamo chiusi: una persona ti risponderà a partire da lunedì "
                "30 novembre alle 09:00. Scrivici in privato, così potremo aiutarti senza condividere qui i tuoi dati.",
                id="it_public_closed",
            ),
        ],
    )
    def test_default_texts_say_who_answers_and_when(self, lang: str, kind: str, facts: AckFacts, expected: str) -> None:
        """Default acknowledgments promise a person and a time: within ~N minutes, or from the next opening."""
        assert expected == AckWriter(team_with()).write(kind, lang, facts).text  # type: ignore[arg-type]

    @pytest.mark.parametrize("lang", DEFAULT_LANGUAGES)
    @pytest.mark.parametrize("kind", ACK_KINDS)
    def test_public_texts_repeat_nothing_personal(self, lang: str, kind: str) -> None:
        """A public acknowledgment carries no customer name; a dm one greets by first name only."""
        facts = AckFacts("reduced", EVENING, NEXT_OPEN, timedelta(minutes=40), None, None, "Zebedeo Quartararo")
        text = AckWriter(team_with()).write(kind, lang, facts).text  # type: ignore[arg-type]
        assert (kind == "dm", False) == ("Zebedeo" in text, "Quartararo" in text)

    @pytest.mark.parametrize("lang", DEFAULT_LANGUAGES)
    @pytest.mark.parametrize("facts", [REDUCED, CLOSED, AckFacts("closed", EVENING, None, timedelta(hours=2), None, "Marta Rossi", "Ana", True)], ids=["reduced", "closed", "closed_paged_no_opening"])
    def test_default_texts_fit_platform_limits(self, lang: str, facts: AckFacts) -> None:
        """Default dm texts stay within 640 characters and public ones within 280."""
        writer = AckWriter(team_with())
        lengths = (len(writer.write("dm", lang, facts).text), len(writer.write("public", lang, facts).text))
        assert (True, True) == (lengths[0] <= ACK_MAX_CHARS, lengths[1] <= PUBLIC_MAX_CHARS)

    def test_customer_name_is_data_not_template(self) -> None:
        """A customer name that looks like a template expression is printed as written."""
        facts = AckFacts("reduced", EVENING, NEXT_OPEN, timedelta(minutes=40), None, None, "{{7*7}} Rossi")
        assert AckWriter(team_with()).write("dm", "it", facts).text.startswith("Ciao {{7*7}}, grazie")

    def test_operator_template_overrides_default(self) -> None:
        """A team's triage.templates[locale][kind] replaces the default for that language and kind."""
        source = "{{ first_name }}, {{ staff_name }} di {{ team_name }} risponde entro {{ reply_within_minutes }} minuti ({{ mode }})."
        writer = AckWriter(team_with(templates_yaml("it", "dm", source)))
        assert "Ana, Marta di Sportello risponde entro 40 minuti (reduced)." == writer.write("dm", "it", REDUCED).text

    @pytest.mark.parametrize(
        ("kind", "source", "message"),
        [
            pytest.param("dm", "{{ ''.__class__.__mro__ }}", "refused by the sandbox: access to attribute '__class__'", id="sandbox_dunder"),
            pytest.param("dm", "{{ order_number }}", "refused by the sandbox: 'order_number' is undefined", id="unknown_variable"),
            pytest.param("public", "Ciao {{ first_name }}!", "'first_name' is undefined", id="public_has_no_customer_name"),
            pytest.param("dm", "x" * 700, "renders 700 characters; keep it within 640", id="too_long"),
        ],
    )
    def test_bad_operator_templates_are_refused(self, kind: str, source: str, message: str) -> None:
        """An operator template that escapes the sandbox, uses unknown data or runs long is refused when loaded."""
        # Built directly: the coverage loader refuses these templates itself, before the worker sees them.
        team = Team("desk", name="Sportello", timezone=ROME, hours=WeeklyHours(((),) * 7),
                    triage=TriageOptions(templates={"it": {kind: source}}))
        with pytest.raises(AckTemplateError, match=f"team desk: template it/{kind}") as refused:
            AckWriter(team)
        assert message in str(refused.value)
