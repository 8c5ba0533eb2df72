"""The ``escalation:`` block of a team in the coverage file (docs/promises.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schedules import CoverageInvalid, Team
from schedules.model import (
    DEFAULT_ESCALATION_CHAIN,
    EscalationChain,
    EscalationLink,
    EscalationPolicy,
)
from tests.support.promises import coverage_of

TEAM = """
teams:
  care-it:
    timezone: Europe/Rome
    hours: {mon-fri: ["09:00-19:00 open"]}
    staff:
      marta: {notify: ["mailto:marta@example.com"]}
    escalation:
"""


def problems_of(block: str) -> list[str]:
    with pytest.raises(CoverageInvalid) as caught:
        coverage_of(TEAM + block)
    return [str(problem) for problem in caught.value.problems]


class TestEscalationBlock:
    def test_full_block_loads(self, care_it: Team) -> None:
        """Every key of the block is read into the team's EscalationPolicy."""
        expected = EscalationPolicy(
            chains={
                "reduced": EscalationChain(
                    timedelta(minutes=15),
                    (
                        EscalationLink("next_on_call"),
                        EscalationLink("lead", "anna"),
                        EscalationLink("channel", "slack:https://hooks.slack.example/T1/B9/esc"),
                    ),
                    2,
                ),
                "closed": EscalationChain(timedelta(minutes=10), (EscalationLink("next_on_call"), EscalationLink("lead", "anna")), 1),
            },
            claim_limit=timedelta(minutes=30),
            window_margin=timedelta(hours=2),
            targets={"reduced": timedelta(hours=1), "closed": timedelta(hours=12)},
        )
        assert expected == care_it.escalation

    def test_absent_block_gives_defaults(self) -> None:
        """A team without the block escalates to the next on call after 15 min, once, in every mode."""
        team = coverage_of(TEAM.replace("    escalation:\n", "")).teams["care-it"]
        assert EscalationPolicy() == team.escalation
        assert DEFAULT_ESCALATION_CHAIN == team.escalation.chain_for("closed")

    def test_mode_left_out_gets_default_chain(self) -> None:
        """A mode the block does not name keeps the default chain."""
        team = coverage_of(TEAM + "      closed: {after: 5m, chain: [lead:marta]}\n").teams["care-it"]
        assert DEFAULT_ESCALATION_CHAIN == team.escalation.chain_for("reduced")
        assert 1 == team.escalation.chain_for("closed").repeat

    def test_channel_link_hides_its_secret(self) -> None:
        """A channel link prints its scheme only: a webhook URL may carry a token."""
        assert "slack:…" == str(EscalationLink("channel", "slack:https://hooks.slack.example/T1/B9/secret"))

    @pytest.mark.parametrize(
        ("block", "expected"),
        [
            pytest.param(
                "      closed: {after: 10m, chain: [next_oncall]}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed', 'chain': unknown step 'next_oncall'; did you mean 'next_on_call'? ",
                id="unknown_step",
            ),
            pytest.param(
                "      closed: {after: 10m, chain: [lead:mrta]}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed', 'chain': 'mrta' is not under 'staff'; did you mean 'marta'? ",
                id="lead_not_in_staff",
            ),
            pytest.param(
                '      closed: {after: 10m, chain: ["ftp://example.com/x"]}\n',
                "test.yaml:9: team 'care-it', 'escalation', 'closed', 'chain': 'ftp:' is not a notify scheme; ",
                id="bad_uri_scheme",
            ),
            pytest.param(
                "      closed: {after: 10 minutes, chain: [next_on_call]}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed', 'after': '10 minutes' is not a duration; ",
                id="bad_duration",
            ),
            pytest.param(
                "      closed: {after: 10m, chain: [next_on_call], repeat: 0}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed': 'repeat' is '0'; ",
                id="repeat_zero",
            ),
            pytest.param(
                "      closed: {after: 10m, chain: []}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed': 'chain' is empty; ",
                id="empty_chain",
            ),
            pytest.param(
                "      closed: {chain: [next_on_call]}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'closed': 'after' is missing; ",
                id="after_missing",
            ),
            pytest.param(
                "      claim_limt: 30m\n",
                "test.yaml:9: team 'care-it', 'escalation': unknown key 'claim_limt'; did you mean 'claim_limit'? ",
                id="unknown_key",
            ),
            pytest.param(
                "      targets: {late: 1h}\n",
                "test.yaml:9: team 'care-it', 'escalation', 'targets': unknown key 'late'; ",
                id="target_unknown_mode",
            ),
            pytest.param(
                "      window_margin: 2x\n",
                "test.yaml:9: team 'care-it', 'escalation', 'window_margin': '2x' is not a duration; ",
                id="bad_margin",
            ),
        ],
    )
    def test_invalid_block_is_rejected_with_line_and_hint(self, block: str, expected: str) -> None:
        """Each fault names the file, the line, what is wrong and what to write instead."""
        problems = problems_of(block)
        assert 1 == len(problems), problems
        assert problems[0].startswith(expected), problems[0]

    def test_every_problem_is_listed(self) -> None:
        """Faults in the block are listed together, not one at a time."""
        problems = problems_of("      closed: {after: soon, chain: [lead:nobody, bogus]}\n      claim_limit: never\n")
        assert 4 == len(problems), problems
