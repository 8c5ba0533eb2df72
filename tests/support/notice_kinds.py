"""One notice of every kind (:data:`responders.notice.NOTICE_KINDS`), each built by the code
that makes it in the service, over the example coverage's care-it (Europe/Rome; marta on
call the week of 23 November, giulia the week of 16 November)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from promises.routes import digest_route, escalation_route, reminder_route, window_route
from promises.rules import PendingEscalation, handover_digest, next_escalation
from promises.ticks import reminders_due
from records.wire import Notify, RouteRequest
from responders.fakes.samples import NOW, WROTE_AT, ack_request, route_request
from responders.notice import Notice, NoticeKind
from schedules import Team, load_coverage
from streams.outbox import failed_ack_route
from streams.sweeps import backlog_of
from tests.conftest import EXAMPLE_COVERAGE
from triage.state import ConversationState

ROME = ZoneInfo("Europe/Rome")
MARTA = Notify(member="marta", name="Marta Rossi", uris=["slack:https://hooks.slack.example/T1/B1/abc"])
CONVERSATION = "fb:PAGE_111:PSID_222"
CLAIM = "https://offhours.example/api/v1/actions/claim-token"
FRIDAY_EVENING = datetime(2026, 11, 20, 20, 0, tzinfo=ROME)  # reduced; giulia on call
SATURDAY_18 = datetime(2026, 11, 21, 18, 0, tzinfo=ROME)  # the WhatsApp window closes at 20:00
TUESDAY_OPENING = datetime(2026, 11, 24, 9, 0, tzinfo=ROME)


@dataclass(frozen=True)
class Built:
    """A route of one kind, the instant it is rendered at and the links the caller adds."""

    route: RouteRequest
    now: datetime
    claim_url: str | None = CLAIM
    links: dict[str, str] = field(default_factory=dict)

    def notice(self, uri: str) -> Notice:
        member = self.route.to[0] if self.route.to else MARTA
        return Notice(route=self.route, member=member, uri=uri, now=self.now, claim_url=self.claim_url,
                      links=self.links)


def care_it() -> Team:
    return load_coverage(EXAMPLE_COVERAGE).teams["care-it"]


def _s(at: datetime) -> int:
    return int(at.timestamp())


def route() -> Built:
    return Built(route_request([MARTA.uris[0]]), NOW)


def page() -> Built:
    return Built(route_request([MARTA.uris[0]], action="page", text="Mi hanno clonato la carta, aiuto",
                               reason="reduced hours 19:00-24:00; urgent (fraud); paging on call: marta"), NOW)


def escalation() -> Built:
    team = care_it()
    pending = PendingEscalation(
        event_id="fb:m_abc123", team="care-it", conversation=CONVERSATION, mode="reduced", routed_at=WROTE_AT,
        routed_to=("marta",), channel="facebook", account="acme.it.facebook", author_name="Ana Lopez",
        text="Il mio ordine non è arrivato", window_closes=(WROTE_AT + timedelta(hours=24)).isoformat(), kind="dm",
    )
    step = next_escalation(pending, team, NOW)
    assert step is not None
    return Built(escalation_route(step, pending, team), NOW)


def reminder() -> Built:
    team = care_it()
    state = ConversationState(
        team="care-it", customer_at=_s(WROTE_AT), waiting_since=_s(WROTE_AT), ack_at=_s(WROTE_AT),
        reply_by=_s(WROTE_AT + timedelta(minutes=40)), channel="facebook", kind="dm", promised="Ciao Ana, …",
        author_name="Ana Lopez", text="Il mio ordine non è arrivato", account="acme.it.facebook",
    )
    [due] = reminders_due(CONVERSATION, state, team, NOW)
    return Built(reminder_route(due, state, team), NOW)


def window() -> Built:
    team = care_it()
    state = ConversationState(
        team="care-it", customer_at=_s(FRIDAY_EVENING), waiting_since=_s(FRIDAY_EVENING - timedelta(minutes=5)),
        channel="whatsapp", kind="dm",
        author_name="Giorgio Neri", text="La fattura è sbagliata, mi richiamate?", account="acme.it.whatsapp",
    )
    built, _ = window_route(state, team, "wa:PHONE_1:39333", SATURDAY_18)
    return Built(built, SATURDAY_18)


def handover() -> Built:
    team = care_it()
    sunday = datetime(2026, 11, 22, 11, 0, tzinfo=ROME)
    rows = [
        (b"fb:PAGE_111:PSID_888", ConversationState(
            team="care-it", customer_at=_s(sunday), waiting_since=_s(sunday), channel="facebook", kind="dm",
            author_name="Ana Lopez", text="Il mio ordine non è arrivato", account="acme.it.facebook",
            # acknowledged during an earlier wait, answered since: nothing is promised now
            ack_at=_s(sunday - timedelta(days=2)), reply_by=_s(sunday - timedelta(days=2, minutes=-40)),
            promised="Ciao Ana, …")),
        (b"wa:PHONE_1:39333", ConversationState(
            team="care-it", customer_at=_s(NOW), waiting_since=_s(NOW), ack_at=_s(NOW),
            reply_by=_s(TUESDAY_OPENING + timedelta(minutes=30)), channel="whatsapp", kind="dm",
            promised="Ciao Giorgio, …", author_name="Giorgio Neri", text="Mi richiamate?", account="acme.it.whatsapp")),
        (b"tg:offhours_bot:4242", ConversationState(
            team="care-it", customer_at=_s(NOW + timedelta(hours=2)), waiting_since=_s(NOW + timedelta(hours=2)),
            channel="telegram", kind="dm", urgent=True, author_name=None, text="Account bloccato!\nAiuto",
            account="acme.it.telegram")),
    ]
    encoded = [(key, state.to_bytes()) for key, state in rows]
    digest = handover_digest(team, backlog_of(encoded, team, TUESDAY_OPENING), TUESDAY_OPENING)
    built = digest_route(digest, team, {0})
    links = {key.decode(): f"https://offhours.example/api/v1/actions/claim-{number}"
             for number, (key, _) in enumerate(rows, start=1)}
    return Built(built, TUESDAY_OPENING + timedelta(minutes=5), claim_url=None, links=links)


def ack_failed() -> Built:
    request = ack_request(
        channel="telegram", account="acme.it.telegram", conversation="tg:offhours_bot:4242", recipient="4242",
        reply_to="17", window_closes=None,
    )
    built = failed_ack_route(request, [MARTA], "reduced", "telegram: error 400: Bad Request: chat not found")
    return Built(built, NOW)


BUILDERS = {
    "route": route, "page": page, "escalation": escalation, "reminder": reminder,
    "handover": handover, "ack_failed": ack_failed, "window": window,
}
"""One builder per notice kind."""


def built(kind: NoticeKind) -> Built:
    return BUILDERS[kind]()
