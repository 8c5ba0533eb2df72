"""Triage, pure: one event and its conversation's state in, one outcome out.

- :mod:`triage.policy`: the decision rules (queue, route, page, ignore, reject) and
  what to acknowledge and route;
- :mod:`triage.acks`: the acknowledgment texts and their templates (``templates/``);
- :mod:`triage.urgency`: urgent keywords and patterns;
- :mod:`triage.state`: the conversation state kept per conversation.

No Faust, Kafka, asyncio, environment or clock: the event's instant is the clock.
The rules are the README's "Decisions" section.

May import: :mod:`promises`, :mod:`brokers`, :mod:`schedules`, :mod:`records` (today
:mod:`promises`, :mod:`schedules` and :mod:`records`); not :mod:`responders`, which
shares its layer.
"""
