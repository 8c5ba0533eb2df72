"""Tests for triage.urgency: what makes a customer's message urgent."""

from __future__ import annotations

import inspect
import time

import pytest

from schedules import TriageOptions
from schedules.patterns import pattern_problem
from triage.urgency import SCAN_CHARS, UrgencyRules

DEFAULTS = UrgencyRules()


class TestUrgencyRules:
    @pytest.mark.parametrize(
        ("text", "rule"),
        [
            pytest.param("Il sito NON   FUNZIONA da stamattina", "outage: non funziona", id="it_outage_spacing_case"),
            pytest.param("Ennesimo disservizio in zona Prati", "outage: disservizio", id="it_outage_disservizio"),
            pytest.param("Blackout totale a Milano", "outage: blackout", id="it_blackout"),
            pytest.param("Your website is down again", "outage: is down", id="en_outage"),
            pytest.param("La box est en panne", "outage: en panne", id="fr_panne_longest_phrase"),
            pytest.param("La app no funciona", "outage: no funciona", id="es_outage"),
            pytest.param("Das Internet funktioniert nicht", "outage: funktioniert nicht", id="de_outage"),
            pytest.param("Questa è una truffa!", "fraud: truffa", id="it_fraud"),
            pytest.param("Ho un addebito non autorizzato sul conto", "fraud: addebito non autorizzato", id="it_unauthorized_charge"),
            pytest.param("Mi hanno detto che ho la carta CLONATA? Sì, carta clonata", "fraud: carta clonata", id="it_cloned_card"),
            pytest.param("My card stolen yesterday", "fraud: card stolen", id="en_card_stolen"),
            pytest.param("Prélèvement non autorisé sur mon compte", "fraud: prelevement non autorise", id="fr_accents_folded"),
            pytest.param("Betrug! Jemand hat abgebucht", "fraud: betrug", id="de_fraud"),
            pytest.param("C'è PERICOLO, il cavo è scoperto", "safety: pericolo", id="it_danger_upper"),
            pytest.param("The charger caught fire", "safety: caught fire", id="en_fire"),
            pytest.param("Principio di incendio nel negozio", "safety: incendio", id="it_fire"),
            pytest.param("Mio figlio è ferito", "safety: ferito", id="it_injured"),
            pytest.param("I'm locked out of my account", "lockout: locked out", id="en_locked_out"),
            pytest.param("I can\u2019t log in since the update", "lockout: can't log in", id="en_typographic_apostrophe"),
            pytest.param("Il mio account bloccato, aiuto", "lockout: account bloccato", id="it_account_locked"),
            pytest.param("Mi cuenta bloqueada desde ayer", "lockout: cuenta bloqueada", id="es_account_locked"),
        ],
    )
    def test_default_rules_match(self, text: str, rule: str) -> None:
        """The built-in multilingual defaults find the urgent phrase, whatever its case and accents."""
        assert (True, rule) == DEFAULTS.is_urgent(text)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("Il mio ordine non è arrivato", id="ordinary_complaint"),
            pytest.param("Quel truffatore di mio cugino", id="word_boundary_truffatore"),
            pytest.param("I wrote it down somewhere", id="down_without_outage"),
            pytest.param("Love your brand", id="german_brand_not_english"),
            pytest.param("", id="empty"),
            pytest.param(None, id="no_text"),
        ],
    )
    def test_ordinary_messages_are_not_urgent(self, text: str | None) -> None:
        """Messages without an urgent phrase (or with one only inside a longer word) are not urgent."""
        assert (False, None) == DEFAULTS.is_urgent(text)

    @pytest.mark.parametrize(
        ("options", "text", "expected"),
        [
            pytest.param(
                TriageOptions(urgent_keywords=("rimborso negato",)), "RIMBORSO   negato!", (True, "keyword: rimborso negato"), id="keyword"
            ),
            pytest.param(
                TriageOptions(urgent_keywords=("città",)), "in citta", (True, "keyword: citta"), id="keyword_accent_folded"
            ),
            pytest.param(
                TriageOptions(urgent_patterns=(r"ordine\s+n\.?\s*\d{6}",)),
                "Ordine n. 123456 mai arrivato",
                (True, r"pattern ordine\s+n\.?\s*\d{6}: Ordine n. 123456"),
                id="pattern_case_insensitive",
            ),
            pytest.param(
                TriageOptions(urgent_defaults=False), "Questa è una truffa!", (False, None), id="defaults_off"
            ),
            pytest.param(
                TriageOptions(urgent_defaults=False, urgent_keywords=("guasto",)), "guasto alla linea", (True, "keyword: guasto"), id="defaults_off_keyword_on"
            ),
            pytest.param(
                TriageOptions(urgent_keywords=("truffa",)), "una truffa", (True, "keyword: truffa"), id="team_rule_reported_first"
            ),
        ],
    )
    def test_team_options(self, options: TriageOptions, text: str, expected: tuple[bool, str | None]) -> None:
        """A team's keywords and patterns are compiled with or without the defaults."""
        assert expected == UrgencyRules.from_options(options).is_urgent(text)

    def test_invalid_pattern_is_named(self) -> None:
        """A pattern that is not a regular expression is refused with its text in the error."""
        with pytest.raises(ValueError, match=r"urgent pattern '\(unclosed'"):
            UrgencyRules(patterns=("(unclosed",))

    def test_only_the_text_decides(self) -> None:
        """is_urgent takes the message text and nothing about its author."""
        assert ["text"] == list(inspect.signature(DEFAULTS.is_urgent).parameters)


ADVERSARIAL = [
    pytest.param("a" * 10_000 + "!", id="letters_then_bang"),
    pytest.param(" " * 10_000 + "!", id="spaces_then_bang"),
    pytest.param("a " * 5_000 + "!", id="short_words"),
    pytest.param("non " * 2_500 + "funz", id="keyword_prefixes"),
    pytest.param("carta " * 2_000, id="pattern_prefixes"),
    pytest.param("a@" * 5_000, id="separators"),
]


class TestBoundedCost:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("x" * (SCAN_CHARS - 20) + " truffa", (True, "fraud: truffa"), id="within_the_scanned_start"),
            pytest.param("x " * SCAN_CHARS + "truffa", (False, None), id="past_the_scanned_start"),
        ],
    )
    def test_only_the_start_of_a_message_is_scanned(self, text: str, expected: tuple[bool, str | None]) -> None:
        """Rules see the first SCAN_CHARS (2,000) characters of a message, no more."""
        assert (2000, expected) == (SCAN_CHARS, DEFAULTS.is_urgent(text))

    def test_length_does_not_add_cost(self) -> None:
        """A 5-million-character message costs what its first 2,000 characters cost."""
        rules = UrgencyRules(("guasto", "blackout"), (r"(?i)carta\s+(clonata|rubata)",))
        started = time.perf_counter()
        result = rules.is_urgent("a" * 5_000_000 + "!")
        assert ((False, None), True) == (result, time.perf_counter() - started < 0.5)

    @pytest.mark.parametrize(
        "pattern",
        [
            pytest.param(r"(a+)+$", id="nested_quantifier"),
            pytest.param(r"(\w+\s?)+$", id="nested_word_quantifier"),
            pytest.param(r"(x+x+)+y", id="nested_sequence"),
            pytest.param(r"(a|a)*b", id="identical_alternatives"),
            pytest.param(r"(a|aa)*b", id="overlapping_lengths"),
            pytest.param(r"(a?){25}a{25}", id="counted_optional"),
            pytest.param(r"(.*a){12}", id="counted_dot_star"),
            pytest.param(r"\w+\s*\w+x", id="adjacent_word_runs"),
            pytest.param(r".*foo.*bar", id="two_dot_stars"),
            pytest.param(r"(\w+)?\w+x", id="optional_run_then_run"),
            pytest.param(r"a{1,1000}a{1,1000}b", id="wide_counted_runs"),
            pytest.param(r"(a)\1", id="backreference"),
        ],
    )
    def test_catastrophic_patterns_are_refused(self, pattern: str) -> None:
        """A pattern that can backtrack exponentially or cubically is refused, named, with why."""
        assert pattern_problem(pattern) is not None
        with pytest.raises(ValueError, match="can take too long") as refused:
            UrgencyRules(patterns=(pattern,))
        assert f"urgent pattern {pattern!r}" in str(refused.value)

    @pytest.mark.parametrize(
        ("pattern", "text", "matched"),
        [
            pytest.param(r"(?i)carta\s+(clonata|rubata)", "la mia carta   rubata ieri", "carta rubata", id="readme_pattern"),
            pytest.param(r"ordine\s+n\.?\s*\d{6}", "ordine n. 123456", "ordine n. 123456", id="order_number"),
            pytest.param(r"\b(rimborso|refund)\b", "voglio un rimborso", "rimborso", id="word_choice"),
            pytest.param(r"\w+@\w+\.\w+", "scrivete a ana@acme.it", "ana@acme.it", id="separated_runs"),
            pytest.param(r"(?:ab|cd)+!", "xx abcdab!", "abcdab!", id="repeated_distinct_alternatives"),
            pytest.param(r"^\d{3}-\d{4}$", "555-1234", "555-1234", id="anchored_counts"),
            pytest.param(r"(?i)(ur?gent|asap)!*", "URGENT!!!", "URGENT!!!", id="optional_letter"),
        ],
    )
    def test_ordinary_patterns_are_accepted(self, pattern: str, text: str, matched: str) -> None:
        """Patterns people write (runs separated by other characters, choices, counts) still work."""
        rules = UrgencyRules(patterns=(pattern,), defaults=False)
        assert (None, (True, f"pattern {pattern}: {matched}")) == (pattern_problem(pattern), rules.is_urgent(text))

    @pytest.mark.parametrize(
        "pattern",
        [r"(?i)carta\s+(clonata|rubata)", r"\s+$", r"[^@]+@[^@]+", r"\w+@\w+\.\w+", r"(?=\w+x)", r".*x", r"\w+$"],
    )
    @pytest.mark.parametrize("text", ADVERSARIAL)
    def test_accepted_patterns_stay_fast_on_adversarial_text(self, pattern: str, text: str) -> None:
        """On the bounded text an accepted pattern does at most quadratic work (well under a second)."""
        rules = UrgencyRules(patterns=(pattern,))
        started = time.perf_counter()
        rules.is_urgent(text)
        assert time.perf_counter() - started < 1.0
