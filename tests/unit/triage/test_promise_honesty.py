"""An acknowledgment never promises a reply before a person who gets the message is on duty.

A message routed or paged is seen by staff at once; a queued one only at the next
opening. The example team care-us has reduced hours 20:00-02:00 and nobody on call
and no reduced staff: its customers at 21:30 must be told the next opening, not the
evening team's reply time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from schedules import load_coverage_text
from tests.support.coverage_strategies import (
    PROPERTY_SETTINGS,
    coverage_files,
    instants,
)
from tests.support.policy_fixtures import event, example_coverage, local
from triage.policy import Triage

NEW_YORK = ZoneInfo("America/New_York")


def test_reduced_hours_with_nobody_on_duty_promise_the_next_opening() -> None:
    """care-us at 21:30 on a Tuesday: queued for 08:00, and the customer is told 08:00."""
    at = local("2026-11-24 21:30", NEW_YORK)
    outcome = Triage(example_coverage()).decide(
        event(at, account="acme.us.facebook", conversation="fb:PAGE_US:PSID_1", text="Where is my parcel?", lang="en"),
        None,
    )

    decision = outcome.decision
    assert (decision.mode, decision.action, decision.route_to) == ("reduced", "queue", [])
    assert decision.ack is not None
    assert "40 minutes" not in decision.ack.text
    assert "evening team" not in decision.ack.text
    assert "A person from care-us will answer from Wednesday, November 25 at 8:00" in decision.ack.text
    assert outcome.state is not None and outcome.state.reply_by is not None
    assert datetime.fromtimestamp(outcome.state.reply_by, NEW_YORK) >= local("2026-11-25 08:00", NEW_YORK)


@st.composite
def staffed_coverage(draw: st.DrawFn) -> tuple[str, str]:
    """A generated coverage file (one team ``gen``) answering ``gen.facebook``, sometimes
    with reduced staff, and its time zone."""
    generated = draw(coverage_files())
    lines = generated.text.splitlines()
    extra = ["    accounts: [gen.facebook]"]
    members = [line.split(":")[0].strip() for line in lines if line.startswith("      ") and "name: Member" in line]
    if draw(st.booleans()):
        extra += ["    triage:", f"      reduced_staff: [{draw(st.sampled_from(members))}]"]
    return "\n".join(lines[:4] + extra + lines[4:]) + "\n", generated.zone


@st.composite
def coverage_and_message(draw: st.DrawFn) -> tuple[str, datetime, bool]:
    text, zone = draw(staffed_coverage())
    return text, draw(instants(zone)), draw(st.booleans())


@PROPERTY_SETTINGS
@given(coverage_and_message())
def test_promise_is_never_before_someone_on_duty_sees_the_message(case: tuple[str, datetime, bool]) -> None:
    """For every coverage and instant: routed or paged, a person sees it now; queued, at the
    next opening. The promised reply-by is never earlier."""
    text, at, urgent = case
    coverage = load_coverage_text(text)
    raw = event(
        at,
        id="fb:m_prop",
        account="gen.facebook",
        conversation="fb:PAGE_GEN:PSID_1",
        text="There is a gas leak" if urgent else "Where is my parcel?",
        lang="en",
    )
    outcome = Triage(coverage).decide(raw, None)
    decision = outcome.decision
    if decision.ack is None:
        return
    assert outcome.state is not None
    reply_by = outcome.state.reply_by
    next_open = coverage.teams["gen"].at(at).next_open
    if reply_by is None:
        # No dated promise ("as soon as we reopen"): only when no opening lies within 400 days.
        assert next_open is None, decision.ack.text
        return
    if decision.action in ("route", "page"):
        seen = at
    else:
        assert next_open is not None, decision.ack.text
        seen = next_open
    assert datetime.fromtimestamp(reply_by, UTC) >= seen.astimezone(UTC).replace(microsecond=0), (
        decision.reason,
        decision.ack.text,
    )
