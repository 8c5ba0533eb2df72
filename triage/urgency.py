r"""Urgency: does a customer's message need a person now, whatever the mode?

A message is urgent because of what it says, never because of who wrote it: the rules
see the text only, not the author's followers or fame (README: What offhours does,
"Priority never depends on the author's follower count").

:class:`UrgencyRules` is compiled once per team from its
:class:`schedules.TriageOptions`: the team's ``urgent_keywords`` and ``urgent_patterns``,
plus the built-in multilingual defaults (:data:`DEFAULT_KEYWORDS`) when
``urgent_defaults`` is true. Keywords match case- and accent-insensitively on whole
words ("truffa" matches "TRUFFA!" but not "truffatore"; "non funziona" matches
"NON   FUNZIONA"). Patterns are regular expressions searched case-insensitively in the
text as written, then in its accent-free form.

Cost is bounded. Only the first :data:`SCAN_CHARS` (2,000) characters of a message are
scanned: urgency shows in how a message starts, and no platform sends a longer first
stretch that matters (a keyword further down a long message is not seen). A team's
pattern that could take exponential or cubic time on adversarial text is refused when
the rules are compiled, by the rule the coverage loader applies too
(:func:`schedules.patterns.pattern_problem`). On the bounded text an accepted pattern
does at most quadratic work; the defaults are linear.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from schedules.patterns import pattern_problem

if TYPE_CHECKING:
    from schedules import TriageOptions

# Built-in urgent phrases by category, in it, en, es, fr and de. Each phrase is matched as
# whole words after folding case and accents, so one spelling covers "Panne" and "panné".
# Bare words with everyday meanings ("down", "fire" in "fire tablet") are kept to phrases
# where they say what went wrong, to keep routine messages out of the pager.
DEFAULT_KEYWORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "outage": (
            # it
            "non funziona", "non funzionano", "disservizio", "disservizi",
            "blackout", "black out", "guasto", "senza linea", "senza servizio",
            "servizio interrotto", "rete assente", "rete down",
            # en
            "is down", "are down", "went down", "it's down", "its down", "site down", "app down",
            "service down", "server down", "servers down", "network down", "system down",
            "outage", "not working", "doesn't work", "does not work", "stopped working",
            "no service", "power cut",
            # es
            "no funciona", "caida del servicio", "servicio caido", "sin servicio",
            "apagon", "averia",
            # fr
            "panne", "en panne", "ne fonctionne pas", "ne marche pas", "coupure de courant",
            "hors service",
            # de
            "funktioniert nicht", "geht nicht mehr", "ausfall", "storung", "stoerung",
            "netzausfall", "stromausfall",
        ),
        "fraud": (
            # it
            "truffa", "truffe", "frode", "frodi", "addebito non autorizzato",
            "addebiti non autorizzati", "carta clonata", "carta rubata", "phishing",
            "furto d'identita", "account violato", "account hackerato",
            # en
            "fraud", "fraudulent", "scam", "scammed", "unauthorized charge",
            "unauthorised charge", "unauthorized transaction", "unauthorised transaction",
            "card stolen", "stolen card", "cloned card", "identity theft", "hacked",
            # es
            "fraude", "estafa", "cargo no autorizado", "tarjeta robada",
            "tarjeta clonada", "robo de identidad", "cuenta hackeada",
            # fr
            "arnaque", "escroquerie", "prelevement non autorise", "carte volee",
            "carte clonee", "usurpation d'identite", "compte pirate",
            # de
            "betrug", "betruger", "betrueger", "nicht autorisierte abbuchung",
            "karte gestohlen", "gestohlene karte", "identitatsdiebstahl",
            "konto gehackt",
        ),
        "safety": (
            # it
            "pericolo", "pericoloso", "pericolosa", "incendio", "fiamme", "fumo",
            "ferito", "ferita", "feriti", "esplosione", "esploso", "fuga di gas",
            "scossa elettrica", "ustionato",
            # en
            "danger", "dangerous", "fire", "on fire", "caught fire", "smoke", "injured",
            "injury", "explosion", "exploded", "gas leak", "electric shock",
            # es
            "peligro", "peligroso", "incendio", "fuego", "herido", "herida",
            "explosion", "fuga de gas", "descarga electrica",
            # fr
            "danger", "dangereux", "incendie", "blesse", "blessee", "explosion",
            "fuite de gaz", "electrocute",
            # de
            "gefahr", "gefahrlich", "feuer", "verletzt", "explosion",
            "gasleck", "stromschlag",
        ),
        "lockout": (
            # it
            "account bloccato", "conto bloccato", "carta bloccata", "accesso bloccato",
            "non riesco ad accedere", "non riesco a accedere", "non riesco a entrare",
            "non riesco ad entrare", "non posso accedere",
            # en
            "locked out", "account locked", "account blocked", "account suspended",
            "can't log in", "cant log in", "can't login", "cant login",
            "cannot log in", "cannot login", "can not log in", "unable to log in",
            "unable to login", "can't sign in", "cannot sign in", "unable to sign in",
            # es
            "cuenta bloqueada", "no puedo acceder", "no puedo entrar",
            "no puedo iniciar sesion",
            # fr
            "compte bloque", "impossible de me connecter", "je n'arrive pas a me connecter",
            "je ne peux pas me connecter",
            # de
            "konto gesperrt", "account gesperrt", "ausgesperrt",
            "kann mich nicht anmelden", "kann mich nicht einloggen",
        ),
    }
)

SCAN_CHARS = 2000
"""How much of a message the rules scan: its first 2,000 characters."""

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def fold(text: str) -> str:
    """``text`` without case, accents or typographic apostrophes, for matching."""
    if text.isascii():
        # NFKD leaves ASCII as it is and it has no combining marks: only the case and
        # the backtick remain (the per-character filter below was a tenth of the policy).
        return text.translate(_APOSTROPHES).casefold()
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _phrase_pattern(phrase: str) -> str:
    words = fold(phrase).split()
    return r"\s+".join(re.escape(word) for word in words)


def _whole_words(phrases: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so that "en panne" is reported rather than its part "panne".
    alternatives = sorted({_phrase_pattern(p) for p in phrases if p.strip()}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    pattern: re.Pattern[str]
    folded: bool


class UrgencyRules:
    """A team's compiled urgency rules; build once per team, then call :meth:`is_urgent`."""

    __slots__ = ("_rules",)

    def __init__(
        self,
        keywords: Iterable[str] = (),
        patterns: Iterable[str] = (),
        *,
        defaults: bool = True,
    ) -> None:
        """Compile ``keywords`` (whole words) and ``patterns`` (regular expressions).

        Raises ``ValueError`` naming the pattern when one is not a valid expression or
        could take too long (:func:`schedules.patterns.pattern_problem`). Operators' rules are tried first,
        so a match reports the team's own rule.
        """
        rules: list[_Rule] = []
        custom = _whole_words(keywords)
        if custom is not None:
            rules.append(_Rule("keyword", custom, folded=True))
        for source in patterns:
            try:
                compiled = re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"urgent pattern {source!r} is not a valid regular expression: {exc}") from None
            problem = pattern_problem(source)
            if problem is not None:
                raise ValueError(f"urgent pattern {source!r} {problem}")
            rules.append(_Rule(f"pattern {source}", compiled, folded=False))
        if defaults:
            for category, phrases in DEFAULT_KEYWORDS.items():
                compiled_default = _whole_words(phrases)
                if compiled_default is not None:
                    rules.append(_Rule(category, compiled_default, folded=True))
        self._rules = tuple(rules)

    @classmethod
    def from_options(cls, options: TriageOptions) -> UrgencyRules:
        """The rules a team's ``triage`` options ask for."""
        return cls(options.urgent_keywords, options.urgent_patterns, defaults=options.urgent_defaults)

    def is_urgent(self, text: str | None) -> tuple[bool, str | None]:
        """``(True, rule)`` for the first rule that matches ``text``, else ``(False, None)``.

        ``rule`` reads ``"<category>: <matched words>"``, e.g. ``"fraud: carta clonata"``,
        ``"keyword: rimborso"`` or ``"pattern <regex>: <matched text>"``. Only the first
        :data:`SCAN_CHARS` characters are scanned.
        """
        if not text:
            return False, None
        text = text[:SCAN_CHARS]
        folded = fold(text)[:SCAN_CHARS]
        for rule in self._rules:
            if rule.folded:
                match = rule.pattern.search(folded)
            else:
                match = rule.pattern.search(text) or rule.pattern.search(folded)
            if match is not None:
                return True, f"{rule.category}: {' '.join(match.group(0).split())}"
        return False, None
