"""The wire kernel: what travels between processes and topics, and nothing else.

- :mod:`records.wire`: the social event (its JSON shape, parsing and limits), the
  decision, the acknowledgment and route requests of the outboxes, dead letters;
- :mod:`records.actions`: the records of the actions topic: staff claims and
  "answered", and the workers' escalation, reminder, window and expiry ticks;
- :mod:`records.platforms`: per-platform facts (id prefixes, who is answered and how,
  reply windows; docs/platforms.md);
- :mod:`records.headers`: the Kafka headers offhours' records carry;
- :mod:`records.links`: signed, expiring claim links;
- :mod:`records.secrets`: masking of secrets inside records.

It imports nothing else of offhours; every other package may import it.
"""
