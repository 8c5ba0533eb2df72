"""A team answering through a Chatwoot desk: the coverage file's ``chatwoot:`` block and
the staff's ``chatwoot_agent`` (README: The coverage file)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from schedules import ChatwootDesk, CoverageInvalid, load_coverage, load_coverage_text

ROOT = Path(__file__).resolve().parents[3]

HEAD = """\
teams:
  care-es:
    timezone: Europe/Madrid
"""


def problems_of(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(CoverageInvalid) as caught:
        load_coverage_text(textwrap.dedent(text), filename="bad.yaml")
    return [(p.line, str(p)) for p in caught.value.problems]


class TestValid:
    def test_shipped_example_loads(self) -> None:
        """examples/coverage-chatwoot.yaml: the inboxes are the team's accounts, the agents its staff."""
        coverage = load_coverage(ROOT / "examples" / "coverage-chatwoot.yaml")
        team = coverage.teams["care-es"]
        assert (
            ("chatwoot:7/12", "chatwoot:7/13", "chatwoot:7/15"), ChatwootDesk(7, (12, 13, 15)), 7, (12, 13, 15),
            "pablo", 31, team,
        ) == (
            team.accounts, team.chatwoot, team.chatwoot_account, team.chatwoot_inboxes,
            team.member_for_agent(32), team.agent_for("lucia"), coverage.team_for_account("chatwoot:7/13"),
        )

    def test_desk_accounts_follow_the_listed_ones(self) -> None:
        """A team may list accounts and a desk; the desk's names come after the listed ones."""
        coverage = load_coverage_text(HEAD + "    accounts: [acme.es.x]\n    chatwoot: {account: 1, inboxes: [4, 3]}\n")
        assert ("acme.es.x", "chatwoot:1/4", "chatwoot:1/3") == coverage.teams["care-es"].accounts

    def test_hold(self) -> None:
        """``hold: true`` (offhours is the inboxes' agent bot); off when absent or null."""
        held = load_coverage_text(HEAD + "    chatwoot: {account: 1, inboxes: [3], hold: true}\n")
        plain = load_coverage_text(HEAD + "    chatwoot: {account: 1, inboxes: [3], hold: null}\n")
        assert (ChatwootDesk(1, (3,), hold=True), False) == (
            held.teams["care-es"].chatwoot, plain.teams["care-es"].chatwoot.hold)

    def test_unknown_agent_and_member(self) -> None:
        """An agent id no member carries, or a member without one, maps to None."""
        coverage = load_coverage_text(HEAD + "    staff: {ana: {chatwoot_agent: 9007199254740993}, bob: {name: Bob}}\n")
        team = coverage.teams["care-es"]
        assert ("ana", None, None, None, None, ()) == (
            team.member_for_agent(9007199254740993), team.member_for_agent(1), team.agent_for("bob"),
            team.agent_for("nobody"), team.chatwoot_account, team.chatwoot_inboxes,
        )

    def test_same_agent_in_two_teams(self) -> None:
        """One person may be staff of two teams with the same Chatwoot user id."""
        text = (
            "teams:\n"
            "  a: {timezone: UTC, chatwoot: {account: 1, inboxes: [3]}, staff: {ana: {chatwoot_agent: 42}}}\n"
            "  b: {timezone: UTC, chatwoot: {account: 1, inboxes: [4]}, staff: {ana: {chatwoot_agent: 42}}}\n"
        )
        coverage = load_coverage_text(text)
        assert ["ana", "ana"] == [team.member_for_agent(42) for team in coverage.teams.values()]

    def test_shipped_coverage_unchanged(self) -> None:
        """examples/coverage.yaml has no desk: its teams' accounts are exactly those it lists."""
        coverage = load_coverage(ROOT / "examples" / "coverage.yaml")
        assert (
            ("acme.it.facebook", "acme.it.instagram", "acme_it_x", "acme.it.whatsapp"), None, None
        ) == (coverage.teams["care-it"].accounts, coverage.teams["care-it"].chatwoot,
              coverage.teams["care-it"].staff["marta"].chatwoot_agent)


# (yaml, line, fragments of the problem text: what is wrong and what to write)
INVALID = [
    pytest.param(HEAD + "    chatwoot: {inboxes: [3]}\n", 4, ["'account' is missing", "add 'account:'"], id="account_missing"),
    pytest.param(HEAD + "    chatwoot: {account: 1}\n", 4, ["'inboxes' is missing", "add 'inboxes:'"], id="inboxes_missing"),
    pytest.param(HEAD + "    chatwoot: {account: 1, inboxes: []}\n", 4, ["'inboxes' is empty", "inboxes: [3, 4]"], id="inboxes_empty"),
    pytest.param(HEAD + "    chatwoot: {account: 1, inboxes: 3}\n", 4, ["'inboxes' must be a list", "inboxes: [3, 4]"], id="inboxes_not_a_list"),
    pytest.param(HEAD + "    chatwoot: {account: 0, inboxes: [3]}\n", 4, ["'account' must be a positive whole number, not '0'", "account: 1"], id="account_zero"),
    pytest.param(HEAD + "    chatwoot: {account: acme, inboxes: [3]}\n", 4, ["'account' must be a positive whole number, not 'acme'"], id="account_not_a_number"),
    pytest.param(HEAD + "    chatwoot:\n      account: 1\n      inboxes: [3, -4]\n", 6, ["'inboxes'[1] must be a positive whole number, not '-4'", "inboxes: [3, 4]"], id="inbox_negative"),
    pytest.param(HEAD + "    chatwoot: {account: 1, inboxes: [3.5]}\n", 4, ["not '3.5'"], id="inbox_fraction"),
    pytest.param(HEAD + "    chatwoot: {account: 1, inboxes: [99999999999999999999]}\n", 4, ["must be a positive whole number"], id="inbox_beyond_64_bits"),
    pytest.param(HEAD + "    chatwoot: {account: 1, inbox: [3]}\n", 4, ["unknown key 'inbox'", "did you mean 'inboxes'"], id="unknown_key"),
    pytest.param(HEAD + "    chatwoot:\n      account: 1\n      inboxes: [3]\n      hold: maybe\n", 7, ["'chatwoot', 'hold' must be true or false, not 'maybe'", "write true or false"], id="hold_not_a_boolean"),
    pytest.param(HEAD + "    chatwoot: 1\n", 4, ["'chatwoot' must be a mapping"], id="not_a_mapping"),
    pytest.param(HEAD + "    chatwoot:\n      account: 1\n      inboxes:\n        - 3\n        - 3\n", 8, ["inbox 3 is listed twice (also line 7)", "list each inbox once"], id="inbox_twice_in_one_team"),
    pytest.param(
        "teams:\n  a:\n    timezone: UTC\n    chatwoot: {account: 1, inboxes: [3, 4]}\n"
        "  b:\n    timezone: UTC\n    chatwoot: {account: 1, inboxes: [4]}\n",
        7, ["team 'b', 'chatwoot': Chatwoot inbox 4 of account 1 (chatwoot:1/4) is already answered by team 'a' (line 4)",
            "give each inbox to one team only"], id="inbox_in_two_teams",
    ),
    pytest.param(
        "teams:\n  a:\n    timezone: UTC\n    accounts: [\"chatwoot:1/4\"]\n"
        "  b:\n    timezone: UTC\n    chatwoot: {account: 1, inboxes: [4]}\n",
        7, ["(chatwoot:1/4) is already answered by team 'a' (line 4)"], id="inbox_listed_as_account_elsewhere",
    ),
    pytest.param(HEAD + "    staff:\n      ana: {chatwoot_agent: 0}\n", 5, ["staff 'ana', 'chatwoot_agent' must be a positive whole number, not '0'", "chatwoot_agent: 42"], id="agent_zero"),
    pytest.param(HEAD + "    staff:\n      ana: {chatwoot_agent: ana@example.com}\n", 5, ["not 'ana@example.com'", "the id Chatwoot shows"], id="agent_not_an_id"),
    pytest.param(
        HEAD + "    staff:\n      ana: {chatwoot_agent: 42}\n      bob:\n        chatwoot_agent: 42\n", 7,
        ["staff 'bob': chatwoot_agent 42 is already staff 'ana' (line 5)", "their own Chatwoot user id"], id="agent_twice_in_one_team",
    ),
    pytest.param(HEAD + "    staff:\n      ana: {chatwoot_agnt: 42}\n", 5, ["unknown key 'chatwoot_agnt'", "did you mean 'chatwoot_agent'"], id="agent_key_misspelt"),
]


class TestInvalid:
    @pytest.mark.parametrize(("text", "line", "fragments"), INVALID)
    def test_problem_names_line_and_fix(self, text: str, line: int, fragments: list[str]) -> None:
        """Each fault is reported with its line, what is wrong and what to write."""
        problems = problems_of(text)
        matching = [(at, message) for at, message in problems if all(f in message for f in fragments)]
        assert [line] == [at for at, _ in matching], problems

    def test_every_problem_at_once(self) -> None:
        """A bad account, a bad inbox and a repeated agent are all reported, in line order."""
        text = (
            HEAD + "    chatwoot:\n      account: x\n      inboxes: [0]\n"
            "    staff:\n      ana: {chatwoot_agent: 7}\n      bob: {chatwoot_agent: 7}\n"
        )
        assert [5, 6, 9] == [line for line, _ in problems_of(text)]
