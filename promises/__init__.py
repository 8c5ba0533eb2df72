"""Keeping promises, pure: escalation, handover, follow-through, reply-window routes, SLA.

- :mod:`promises.rules`: when an unclaimed route escalates, what the handover digest
  lists, when a promised reply-by passed, when a reply window forces an early route,
  and what an acknowledgment may promise from measured first responses;
- :mod:`promises.routes`: the routes those rules send staff (escalation steps,
  reminders, early reply-window routes, the handover digest), worded for staff;
- :mod:`promises.ticks`: which sweep ticks are due, and what each does when applied
  (still due? which route? what to write?);
- :mod:`promises.sla`: first-response times per team and mode, and the SLA report.

The Faust layer (:mod:`streams`) decides when these rules run; they take the clock as
a parameter. The rules are docs/promises.md.

May import: :mod:`schedules`, :mod:`records`; not :mod:`brokers`, which shares its layer.
"""
