r"""Urgent patterns whose cost is bounded: the rule shared by the loader and the worker.

A team's ``urgent_patterns`` run on Python's backtracking engine, so a pattern that
could take exponential or cubic (and worse) time on adversarial text is refused
(:func:`pattern_problem`): backreferences; a repetition of anything that can match more
than one length (``(a+)+``, ``(a|aa)*``, ``(a?){25}``) or of alternatives that can
start alike (``(a|a)*``); and two unbounded repetitions that can take turns over the
same characters with nothing in between to stop them (``\w+\s*\w+``, ``.*a.*b``). On
text bounded as the worker bounds it, an accepted pattern does at most quadratic work.

Pure: the coverage loader refuses such a pattern with its line, and the worker's
urgency rules (``triage.urgency``) refuse it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import (
    _compiler as sre_compile,  # the parse tree and its compiler: how re sees a pattern
)
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any


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
