"""Responders: acknowledgments to customers and notifications to staff, over HTTP and SMTP.

One module per platform or notifier behind the small interface of
:mod:`responders.base`; the delivery loop sends each acknowledgment and notification at
most once (its ledger), within each destination's rate limits, retrying what may be
retried and dead-lettering the rest. No Faust: :mod:`streams.outbox` feeds it.

- :mod:`responders.base`: the interface (sender, notifier, outcomes) and HTTP helpers;
- :mod:`responders.registry`: which sender answers which channel, which notifier
  serves which ``notify`` URI scheme;
- :mod:`responders.delivery`: the delivery loop, its ledger, retries and dead letters;
- :mod:`responders.buckets`: token buckets per destination;
- :mod:`responders.egress`: where the responders may send requests (the egress policy);
- :mod:`responders.config`: the responders' settings (credentials, endpoints, policy);
- :mod:`responders.notice`: what a staff notification says, wherever it is sent;
- customer senders: :mod:`responders.messenger` (Facebook, Instagram),
  :mod:`responders.whatsapp`, :mod:`responders.x`, :mod:`responders.telegram`,
  :mod:`responders.webhook` (the generic channel);
- staff notifiers: :mod:`responders.slack`, :mod:`responders.teams` (both on
  :mod:`responders.incoming_webhook`), :mod:`responders.mail`,
  :mod:`responders.webhook`, :mod:`responders.telegram`;
- :mod:`responders.chatwoot`: the Chatwoot desk's Application API (acknowledgments and
  notes posted once, assignment, priority, labels, status);
- :mod:`responders.desk`: what an acknowledgment or a route of a desk's conversation does
  in that desk (which writes, in which order, each under its own ledger key);
- :mod:`responders.fakes`: a local fake of every platform, for tests and demos.

Platform answers and limits: docs/platforms.md. May import: :mod:`promises`,
:mod:`brokers`, :mod:`schedules`, :mod:`records` (today only :mod:`records`); not
:mod:`triage`, which shares its layer.
"""
