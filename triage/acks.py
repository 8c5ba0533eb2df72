"""Acknowledgment texts: what the customer reads when the team cannot answer at once.

Every acknowledgment is honest about when a person will answer (README: Decisions, ``ack``):
in reduced hours "our evening team will answer within ~40 minutes", when closed "a person
will answer from Monday 09:00". Two kinds exist:

* ``dm``: the full acknowledgment, in a private channel; it may greet the customer by
  first name;
* ``public``: a short public reply to a mention or comment that invites the customer to
  write privately and repeats nothing personal (no name, no text, no order number).

Templates are Jinja2, rendered in the same bounded immutable sandbox the coverage loader
checks them in (:func:`schedules.templates.template_environment`), with
:class:`~jinja2.StrictUndefined` and no autoescaping (plain text). Defaults ship
in ``triage/templates/<lang>.<kind>.j2`` for it, en, es, fr and de; a team overrides
them in ``triage.templates[<lang>][<kind>]``. Only operators write templates: the
customer's text is never template source (nor even a template variable), and the
customer's name is passed as a value, so ``{{ 7*7 }}`` in either stays literal.

Template variables: ``team_name``, ``mode`` (open/reduced/closed: what the customer is
told, so reduced hours with nobody on duty read ``closed``: nobody answers before
the next opening), ``reply_within_minutes``,
``reply_by`` and ``next_open`` (local date and time formatted with Babel for the
language, e.g. "lunedì 30 marzo alle 09:00", or None), ``staff_name`` (first name of the
staff member who has the message now, or None), ``evening`` (the local time is evening
or night), ``paged`` (the message was urgent and paged to on-call staff) and, in ``dm``
templates only, ``first_name`` (the customer's, or None).

Rendered text has its whitespace collapsed to single spaces and is cut to
:data:`ACK_MAX_CHARS`, within every platform's limit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from jinja2 import Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from records.wire import Ack
from schedules.templates import MAX_CHARS, template_environment

if TYPE_CHECKING:
    from schedules import Team

AckKind = Literal["dm", "public"]
ACK_KINDS: tuple[AckKind, ...] = ("dm", "public")
DEFAULT_LANGUAGES: tuple[str, ...] = ("it", "en", "es", "fr", "de")
FALLBACK_LANGUAGE = "en"
ACK_MAX_CHARS = MAX_CHARS

# How a date and a time join in a sentence ("lunedì 30 marzo alle 09:00"). CLDR's
# "atTime" forms are not in Babel's data, so the five default languages are spelled out;
# other languages use the locale's plain "long" date-time join.
_AT_TIME: Mapping[str, str] = MappingProxyType(
    {
        "it": "{1} 'alle' {0}",
        "en": "{1} 'at' {0}",
        "es": "{1} 'a las' {0}",
        "fr": "{1} 'à' {0}",
        "de": "{1} 'um' {0}",
    }
)
_YEAR = re.compile(r"[\s,]*(?:'[^']*'\s*)?y+")


class AckTemplateError(ValueError):
    """An operator's acknowledgment template was refused (syntax, sandbox or variables)."""


@dataclass(frozen=True, slots=True)
class AckFacts:
    """What an acknowledgment states, gathered by the policy before rendering.

    ``at`` is the customer's message instant; ``next_open`` the next open instant (None
    when none is known); ``reply_within`` the promised delay; ``reply_by`` the promised
    reply-by instant (None when no promise can be dated).
    """

    mode: str
    at: datetime
    next_open: datetime | None
    reply_within: timedelta
    reply_by: datetime | None
    staff_name: str | None = None
    customer_name: str | None = None
    paged: bool = False


def language_of(tag: str | None) -> str | None:
    """The lower-case language subtag of ``tag`` ("it-IT" -> "it"), or None."""
    if not tag or not tag.strip():
        return None
    return re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()


def first_name(name: str | None) -> str | None:
    """The first word of ``name`` (at most 40 characters), or None when there is none."""
    words = (name or "").split()
    return words[0][:40] if words else None


@functools.lru_cache(maxsize=4096)
def format_moment(instant: datetime, team_zone: tzinfo, locale: Locale) -> str:
    """``instant`` as a local weekday, day, month and time: "lunedì 30 marzo alle 09:00".

    Cached: every message of a closed night is told the same opening, and babel's
    formatting was a fifth of the policy's time.
    """
    date_pattern = _YEAR.sub("", locale.date_formats["full"].pattern).strip(" ,")
    time_pattern = locale.time_formats["short"].pattern
    join = _AT_TIME.get(locale.language, str(locale.datetime_formats["long"]))
    pattern = join.replace("{1}", date_pattern).replace("{0}", time_pattern)
    return format_datetime(instant, pattern, tzinfo=team_zone, locale=locale)


@functools.lru_cache(maxsize=4096)
def format_time_of_day(instant: datetime, team_zone: tzinfo, locale: Locale) -> str:
    """``instant`` as a local time only: "21:54" (it), "9:54 PM" (en)."""
    return format_datetime(instant, locale.time_formats["short"].pattern, tzinfo=team_zone, locale=locale)


def _default_source(lang: str, kind: AckKind) -> str:
    return (resources.files("triage") / "templates" / f"{lang}.{kind}.j2").read_text("utf-8")


def _sample_facts(team_zone: tzinfo) -> list[AckFacts]:
    # Every branch a template can take, to refuse a bad template when it is loaded rather
    # than when a customer writes.
    at = datetime(2026, 3, 27, 21, 14, tzinfo=team_zone)
    later = datetime(2026, 3, 30, 9, 0, tzinfo=team_zone)
    samples = []
    for mode in ("open", "reduced", "closed"):
        for staff in (None, "Marta"):
            for customer in (None, "Ana Lopez"):
                for next_open in (None, later):
                    samples.append(
                        AckFacts(mode, at, next_open, timedelta(minutes=40), next_open or at, staff, customer, staff is not None)
                    )
    return samples


class AckWriter:
    """One team's compiled acknowledgment templates; build once per coverage snapshot."""

    __slots__ = ("_locales", "_team", "_templates")

    def __init__(self, team: Team, environment: ImmutableSandboxedEnvironment | None = None) -> None:
        """Compile the defaults and ``team.triage.templates``.

        Raises :class:`AckTemplateError` naming the team, language and kind when an
        operator's template does not compile, is refused by the sandbox, uses an unknown
        variable, or renders longer than :data:`ACK_MAX_CHARS` for a sample message.
        """
        env = environment or template_environment()
        self._team = team
        self._locales: Mapping[str, Locale] = MappingProxyType({})
        templates: dict[tuple[str, AckKind], Template] = {}
        for lang in DEFAULT_LANGUAGES:
            for kind in ACK_KINDS:
                templates[lang, kind] = env.from_string(_default_source(lang, kind))
        for raw_lang, by_kind in team.triage.templates.items():
            lang = language_of(raw_lang) or raw_lang
            for kind, source in by_kind.items():
                if kind not in ACK_KINDS:
                    raise AckTemplateError(
                        f"team {team.id}: template {raw_lang}/{kind}: unknown kind; use one of {', '.join(ACK_KINDS)}"
                    )
                templates[lang, kind] = self._compile(env, raw_lang, kind, source)
        self._templates = MappingProxyType(templates)
        # Resolved once: Locale.parse reads the disk (a stat per call) and cost about a
        # third of the policy's time per acknowledgment when done per message.
        languages = {lang for lang, _ in templates} | {language_of(team.locale) or FALLBACK_LANGUAGE}
        self._locales = MappingProxyType({lang: self._resolve_locale(lang) for lang in languages})

    def _compile(self, env: ImmutableSandboxedEnvironment, lang: str, kind: AckKind, source: str) -> Template:
        where = f"team {self._team.id}: template {lang}/{kind}"
        try:
            template = env.from_string(source)
        except TemplateError as exc:
            raise AckTemplateError(f"{where} does not compile: {exc}") from None
        locale = self._locale(language_of(lang) or lang)
        for facts in _sample_facts(self._team.timezone):
            try:
                text = _collapse(template.render(self._variables(kind, facts, locale)))
            except TemplateError as exc:
                raise AckTemplateError(f"{where} is refused by the sandbox: {exc}") from None
            if len(text) > ACK_MAX_CHARS:
                raise AckTemplateError(f"{where} renders {len(text)} characters; keep it within {ACK_MAX_CHARS}")
        return template

    def language_for(self, lang: str | None, kind: AckKind) -> str:
        """The event's language when a template exists for it, else the team's, else English."""
        for candidate in (language_of(lang), language_of(self._team.locale)):
            if candidate is not None and (candidate, kind) in self._templates:
                return candidate
        return FALLBACK_LANGUAGE

    def write(self, kind: AckKind, lang: str | None, facts: AckFacts) -> Ack:
        """The acknowledgment of ``kind`` in the best language for ``lang`` (see :meth:`language_for`)."""
        chosen = self.language_for(lang, kind)
        locale = self._locale(chosen)
        variables = self._variables(kind, facts, locale)
        text = _render(self._templates[chosen, kind], tuple(variables.items()))
        if len(text) > ACK_MAX_CHARS:
            text = text[: ACK_MAX_CHARS - 1].rstrip() + "…"
        return Ack(text=text, lang=chosen, public=kind == "public")

    @property
    def team_locale(self) -> Locale:
        """The Babel locale of the team's own language (for reasons and logs)."""
        return self._locale(language_of(self._team.locale) or FALLBACK_LANGUAGE)

    def _locale(self, lang: str) -> Locale:
        found = self._locales.get(lang)
        return found if found is not None else self._resolve_locale(lang)

    def _resolve_locale(self, lang: str) -> Locale:
        # The team's own locale when it speaks this language, for its regional formats.
        for tag in (self._team.locale, lang):
            if language_of(tag) == lang:
                try:
                    return Locale.parse(tag.replace("-", "_"))
                except (UnknownLocaleError, ValueError):
                    continue
        return Locale.parse(FALLBACK_LANGUAGE)

    def _variables(self, kind: AckKind, facts: AckFacts, locale: Locale) -> dict[str, object]:
        zone = self._team.timezone
        local_at = facts.at.astimezone(zone)
        reply_by = None
        if facts.reply_by is not None:
            same_day = facts.reply_by.astimezone(zone).date() == local_at.date()
            formatter = format_time_of_day if same_day else format_moment
            reply_by = formatter(facts.reply_by, zone, locale)
        variables: dict[str, object] = {
            "team_name": self._team.name,
            "mode": facts.mode,
            "reply_within_minutes": max(1, round(facts.reply_within.total_seconds() / 60)),
            "reply_by": reply_by,
            "next_open": None if facts.next_open is None else format_moment(facts.next_open, zone, locale),
            "staff_name": first_name(facts.staff_name),
            "evening": local_at.hour >= 18 or local_at.hour < 6,
            "paged": facts.paged,
        }
        if kind == "dm":
            variables["first_name"] = first_name(facts.customer_name)
        return variables


@functools.lru_cache(maxsize=4096)
def _render(template: Template, variables: tuple[tuple[str, object], ...]) -> str:
    """``template`` rendered with ``variables``, whitespace collapsed.

    Cached: the sandbox's filters and tests are pure (schedules.templates), so equal
    variables give equal text, and a closed night or an evening tells many customers
    the same thing (the same opening, reply time, staff name; often the same first
    name). Rendering was about a tenth of the policy's time per acknowledgment.
    """
    return _collapse(template.render(dict(variables)))


def _collapse(text: str) -> str:
    return " ".join(text.split())
