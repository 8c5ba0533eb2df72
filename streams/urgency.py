r"""Urgency: does a customer's message need a person now, whatever the mode?

A message is urgent because of what it says, never because of who wrote it: the rules
see the text only, not the author's followers or fame (DESIGN: no privileged customers).

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
patterns run on Python's backtracking engine, so a pattern that could take exponential
or cubic (and worse) time on adversarial text is refused when the rules are compiled
(:func:`pattern_problem`): backreferences; a repetition of anything that can match more
than one length (``(a+)+``, ``(a|aa)*``, ``(a?){25}``) or of alternatives that can
start alike (``(a|a)*``); and two unbounded repetitions that
can take turns over the same characters with nothing in between to stop them
(``\w+\s*\w+``, ``.*a.*b``). On the bounded text an accepted pattern does at most
quadratic work; the defaults are linear.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from re import _compiler as sre_compile  # the parse tree and its compiler: how re sees a pattern
from re import _constants as sre
from re import _parser as sre_parse
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

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


class _Unsafe(Exception):
    """A pattern construct that can make the backtracking engine take too long."""


_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ONE_CHAR = (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN)
_WIDE = 16
"""A repetition allowing more than this many turns counts as unbounded."""
_PROBE = "".join(map(chr, range(0x20, 0x250))) + "\t\n\r\x0b\x0c\x85\xa0\u2000\u2028\u3000\u0660\u212a\u017f"
"""Characters that stand for the rest when comparing what two character classes match."""


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` may not be used as an urgent pattern, or None when it may.

    Refused: an invalid expression, and the constructs that let Python's backtracking
    engine take exponential or high polynomial time (see the module docstring).
    """
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression: {exc}"
    try:
        _Checker(parsed.state).sequence(list(parsed))
    except _Unsafe as exc:
        return f"can take too long on long messages: {exc}"
    except RecursionError:
        return "can take too long on long messages: nested too deeply"
    return None


class _Checker:
    """Walks a parsed pattern (``re._parser``) and raises :class:`_Unsafe` at a risky construct."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._sets: dict[str, frozenset[str]] = {}

    def chars(self, item: tuple[Any, Any]) -> frozenset[str]:
        """The probe characters a one-character item matches (case-insensitively)."""
        key = repr(item)
        if key not in self._sets:
            matcher = sre_compile.compile(sre_parse.SubPattern(self._state, [item]), re.IGNORECASE)
            self._sets[key] = frozenset(ch for ch in _PROBE if matcher.match(ch))
        return self._sets[key]

    def sequence(self, items: Sequence[tuple[Any, Any]]) -> None:
        """Check a sequence: what each element holds, and unbounded repetitions side by side."""
        running: list[frozenset[str]] = []  # unbounded repetitions nothing has stopped yet
        for op, av in self._flat(items):
            if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                raise _Unsafe("backreferences are not supported")
            if op in _ONE_CHAR:
                here = self.chars((op, av))
                running = [seen for seen in running if seen & here]
            elif op in _REPEATS:
                low, high, body = av
                if high > 1:
                    self.repeated(body)
                    if high - low > _WIDE:
                        here = self.first_chars(body)
                        if any(seen & here for seen in running):
                            raise _Unsafe(
                                "two unbounded repetitions can take turns over the same characters"
                            )
                        running.append(here)
                    elif low >= 1 and len(body) == 1 and body[0][0] in _ONE_CHAR:
                        here = self.chars(body[0])
                        running = [seen for seen in running if seen & here]
                else:
                    running = self.opaque(body, running)
            elif op == sre.BRANCH:
                running = self.opaque([(op, av)], running)
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                self.sequence(list(av[1]))
            elif op == sre.ATOMIC_GROUP:
                self.sequence(list(av))

    def repeated(self, body: Any) -> None:
        """A body repeated more than once must match one length and choose no path twice."""
        low, high = body.getwidth()
        if low != high:
            raise _Unsafe("a repetition of something that can match different lengths")
        for op, av in self._flat(list(body)):
            if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
                raise _Unsafe("backreferences are not supported")
            if op == sre.BRANCH:
                heads: list[frozenset[str]] = []
                for alternative in av[1]:
                    head = self.first_chars(alternative)
                    if any(head & other for other in heads):
                        raise _Unsafe("a repetition of alternatives that can start with the same character")
                    heads.append(head)
                    self.repeated(alternative)
            elif op in _REPEATS:
                self.repeated(av[2])
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                self.sequence(list(av[1]))

    def first_chars(self, body: Any) -> frozenset[str]:
        """The characters ``body`` can start with (every probe character when unsure)."""
        for op, av in self._flat(list(body)):
            if op in _ONE_CHAR:
                return self.chars((op, av))
            if op in _REPEATS and av[0] >= 1:
                return self.first_chars(av[2])
            if op == sre.AT:
                continue
            break
        return frozenset(_PROBE)

    def opaque(
        self, items: Sequence[tuple[Any, Any]], running: list[frozenset[str]]
    ) -> list[frozenset[str]]:
        """An optional part or a choice: its unbounded repetitions join the running ones."""
        inner = self.unbounded(items)
        if any(seen & here for seen in running for here in inner):
            raise _Unsafe("two unbounded repetitions can take turns over the same characters")
        for op, av in items:
            if op == sre.BRANCH:
                for alternative in av[1]:
                    self.sequence(list(alternative))
            else:
                self.sequence([(op, av)])
        return running + inner

    def unbounded(self, items: Sequence[tuple[Any, Any]]) -> list[frozenset[str]]:
        """The first characters of every unbounded repetition anywhere in ``items``."""
        found: list[frozenset[str]] = []
        for op, av in self._flat(items):
            if op in _REPEATS:
                if av[1] - av[0] > _WIDE:
                    found.append(self.first_chars(av[2]))
                found += self.unbounded(list(av[2]))
            elif op == sre.BRANCH:
                for alternative in av[1]:
                    found += self.unbounded(list(alternative))
        return found

    @staticmethod
    def _flat(items: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """``items`` with groups opened in place (a group only names what it holds)."""
        flat: list[tuple[Any, Any]] = []
        for op, av in items:
            if op == sre.SUBPATTERN:
                flat += _Checker._flat(list(av[3]))
            else:
                flat.append((op, av))
        return flat


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
        could take too long (:func:`pattern_problem`). Operators' rules are tried first,
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
