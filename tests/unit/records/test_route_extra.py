"""Routes' ``extra`` notes typed on RouteRequest (records.wire): the routes as the writers wrote
them before the notes were typed, read into the typed keys and written back byte for byte."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from records.wire import (
    EscalationNote,
    HandoverItem,
    ReminderNote,
    RouteRequest,
    WindowNote,
)

# Written before the notes were typed: the triage's route (triage.policy), the page of a failed
# acknowledgment (streams.outbox), an escalation step, a follow-through reminder, an early route
# before a reply window closes and a handover digest (promises.routes).
TRIAGE_ROUTE = '{"route_id":"route:fb:m_1","event_id":"fb:m_1","team":"care-it","action":"route","mode":"reduced","to":[{"member":"marta","name":"Marta Rossi","uris":["slack:https://hooks.slack.example/T1/B…/****","mailto:marta@example.com"]}],"channel":"facebook","account":"acme.it.facebook","conversation":"fb:PAGE_111:PSID_222","author_name":"Ana Lopez","text":"Il mio ordine non è arrivato","at":"2026-11-23T21:14:00+01:00","next_open":"2026-11-24T09:00:00+01:00","window_closes":"2026-11-24T21:14:00+01:00","reason":"reduced hours 19:00-24:00; on call: marta","extra":{"reply_to":"m_1","kind":"dm"}}'.encode()
FAILED_ACK_PAGE = '{"route_id":"escalation:ack:fb:m_1","event_id":"fb:m_1","team":"care-it","action":"page","mode":"reduced","to":[{"member":"marta","name":"Marta Rossi","uris":["slack:https://hooks.slack.example/T1/B…/****","mailto:marta@example.com"]}],"channel":"facebook","account":"acme.it.facebook","conversation":"fb:PAGE_111:PSID_222","author_name":"Ana Lopez","text":"Il mio ordine non è arrivato","at":"2026-11-23T21:14:00+01:00","next_open":null,"window_closes":"2026-11-24T21:14:00+01:00","reason":"the customer did not get our acknowledgment because the platform refused it; a person must answer them","extra":{"ack_id":"ack:fb:m_1","ack_text":"Ciao Ana, grazie per averci scritto. Marta del nostro team serale ti risponderà entro circa 40 minuti (entro le 21:54). Non serve scriverci di nuovo: il tuo messaggio è già in coda.","kind":"dm"}}'.encode()
ESCALATION_STEP = b'{"route_id":"esc:fb:m_1:0","event_id":"fb:m_1","team":"care-it","action":"route","mode":"reduced","to":[{"member":"luca","name":"Luca Bianchi","uris":["mailto:luca@example.com"]}],"channel":"generic","account":"","conversation":"fb:PAGE_111:PSID_222","author_name":null,"text":null,"at":"2026-11-23T21:15:00+01:00","next_open":null,"window_closes":null,"reason":"not claimed within 1 minute: escalated to Luca Bianchi","extra":{"escalation":{"step":0,"link":"next_on_call","routed_at":"2026-11-23T21:14:00+01:00"},"kind":null,"waiting_since":"2026-11-23T21:14:00+01:00"}}'
REMINDER = b'{"route_id":"remind:reply_by:c:1795203600","event_id":"remind:reply_by:c:1795203600","team":"care-it","action":"route","mode":"reduced","to":[{"member":"giulia","name":"Giulia Verdi","uris":["webhook:https://pager.example/****"]}],"channel":"whatsapp","account":"","conversation":"c","author_name":null,"text":null,"at":"2026-11-20T20:40:00+01:00","next_open":null,"window_closes":"2026-11-21T20:00:00+01:00","reason":"the customer was promised a reply by Fri 20 Nov 20:40 and no staff has replied yet","extra":{"reminder":{"kind":"reply_by","breach":true,"promised":"Ciao"},"kind":null,"waiting_since":"2026-11-20T20:00:00+01:00"}}'
WINDOW = b'{"route_id":"window:c:1795201200","event_id":"window:c:1795201200","team":"care-it","action":"route","mode":"closed","to":[{"member":"giulia","name":"Giulia Verdi","uris":["webhook:https://pager.example/****"]}],"channel":"whatsapp","account":"","conversation":"c","author_name":null,"text":null,"at":"2026-11-21T18:00:00+01:00","next_open":"2026-11-23T09:00:00+01:00","window_closes":"2026-11-21T20:00:00+01:00","reason":"the reply window closes Sat 21 Nov 20:00 and the team opens Mon 23 Nov 09:00, after it; routed 2 h before the window closes so a person can still reply in it; after it, only an approved WhatsApp template","extra":{"window":{"closes":"2026-11-21T19:00:00+00:00","after":"template","promised":"Ciao"},"kind":null,"waiting_since":"2026-11-20T20:00:00+01:00"}}'
HANDOVER = '{"route_id":"handover:care-it:1795420800:p0,1","event_id":"handover:care-it:1795420800","team":"care-it","action":"route","mode":"open","to":[{"member":"marta","name":"Marta Rossi","uris":["slack:https://hooks.slack.example/T1/B…/****","mailto:marta@example.com"]}],"channel":"generic","account":"","conversation":"","author_name":null,"text":"Handover 2026-11-23T09:00+01:00: 2 conversations waiting for care-it\\n- URGENT whatsapp d: waited 61h00, no reply time promised\\n- whatsapp c: waited 61h00, promised a reply by 2026-11-20T20:40+01:00","at":"2026-11-23T09:00:00+01:00","next_open":null,"window_closes":null,"reason":"you are on call at the opening","extra":{"handover":[{"conversation":"d","channel":"whatsapp","kind":"comment","account":null,"author_name":null,"text":null,"urgent":true,"waiting_since":"2026-11-20T20:00:00+01:00","waited_seconds":219600,"promised":"Ciao","reply_by":null,"link":null,"action":"queue"},{"conversation":"c","channel":"whatsapp","kind":null,"account":null,"author_name":null,"text":null,"urgent":false,"waiting_since":"2026-11-20T20:00:00+01:00","waited_seconds":219600,"promised":"Ciao","reply_by":"2026-11-20T20:40:00+01:00","link":null,"action":"queue"}],"partitions":[0,1]}}'.encode()

WRITTEN = [TRIAGE_ROUTE, FAILED_ACK_PAGE, ESCALATION_STEP, REMINDER, WINDOW, HANDOVER]


@pytest.mark.parametrize("raw", WRITTEN, ids=["route", "failed_ack", "escalation", "reminder", "window", "handover"])
def test_routes_as_written_read_and_write_back_the_same_bytes(raw: bytes) -> None:
    """Decoding and encoding again gives the writer's bytes: keys, order, nulls and values."""
    route = RouteRequest.from_json(raw)
    assert (raw, orjson.loads(raw)["extra"]) == (route.to_json(), route.extra)


def test_the_notes_are_typed() -> None:
    """Each note the writers put in ``extra`` reads as its typed attribute."""
    route, page, step, reminder, window, handover = (RouteRequest.from_json(raw) for raw in WRITTEN)
    assert ("m_1", "dm", None) == (route.reply_to, route.kind, route.urgent_rule)
    assert ("ack:fb:m_1", "dm") == (page.ack_id, page.kind)
    assert (EscalationNote(0, "next_on_call", "2026-11-23T21:14:00+01:00"), None, "2026-11-23T21:14:00+01:00") == (
        step.escalation, step.kind, step.waiting_since)
    assert ReminderNote("reply_by", True, "Ciao") == reminder.reminder
    assert WindowNote("2026-11-21T19:00:00+00:00", "template", "Ciao") == window.window
    assert (["d", "c"], [True, False], (0, 1)) == (
        [item.conversation for item in handover.handover], [item.urgent for item in handover.handover], handover.partitions)
    assert isinstance(handover.handover[0], HandoverItem)


def test_an_extra_dict_still_makes_a_route() -> None:
    """A writer that passes ``extra`` (or replaces it) gets the same route as with the typed keys."""
    route = RouteRequest.from_json(TRIAGE_ROUTE)
    typed = replace(route, reply_to=None, kind="comment", urgent_rule="legal")
    legacy = replace(route, extra={"reply_to": None, "kind": "comment", "urgent_rule": "legal"})
    assert ({"reply_to": None, "kind": "comment", "urgent_rule": "legal"}, "comment", "legal") == (
        legacy.extra, legacy.kind, legacy.urgent_rule)
    assert {"kind": "comment", "urgent_rule": "legal"} == typed.extra  # a None typed key is not written


def test_unknown_and_odd_keys_pass_through() -> None:
    """Keys this version does not know, or of another shape, are kept as they came, in place."""
    data = orjson.loads(ESCALATION_STEP)
    data["extra"] = {"escalation": {"step": 0}, "kind": "dm", "priority": ["high"]}
    route = RouteRequest.from_json(orjson.dumps(data))
    assert (None, "dm", data["extra"]) == (route.escalation, route.kind, route.extra)
    assert orjson.dumps(data) == route.to_json()


def test_a_route_without_extra_reads() -> None:
    """A route with no ``extra`` at all reads with no notes, and writes an empty object."""
    data = orjson.loads(TRIAGE_ROUTE)
    del data["extra"]
    route = RouteRequest.from_json(orjson.dumps(data))
    assert (None, {}) == (route.kind, route.extra)
