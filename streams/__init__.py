"""The Faust layer: the stream worker that decides every event and keeps the promises.

It wires the pure packages to Kafka: the triage agent reads the events topic, asks
:mod:`triage` for a decision, keeps each conversation's state in a table and writes the
decision and the outbox records; the outboxes hand those to :mod:`responders`; sweeps
and timers run the :mod:`promises` rules over the partitions a worker holds. Every
piece of state lives in Kafka-backed tables, so a restart or a rebalance moves it.

- :mod:`streams.app`: the Faust app: topics, tables and the triage agent;
- :mod:`streams.outbox`: the acks and routes outboxes and the delivery ledger table;
- :mod:`streams.sweeps`: the periodic sweeps that post escalation, reminder, window and
  expiry ticks, and the handover digest each worker sends at an opening;
- :mod:`streams.due_index`: when each held conversation next needs a sweep's look (the
  due-time index: a sweep reads only what is due or changed, not every row);
- :mod:`streams.timers`: the periodic sweep and the handover at each team's opening;
- :mod:`streams.reconcile`: input events below the committed offset with no decision,
  found and decided;
- :mod:`streams.watchdog`: a partition held but no longer read, read again;
- :mod:`streams.retention`: what the workers forget, and when;
- :mod:`streams.settings`: the one settings object of the service (``OFFHOURS_...``);
- :mod:`streams.metrics`: the Prometheus metrics of one process;
- :mod:`streams.transport`: Faust's aiokafka transport with a safe fetch hand-off (and a
  short fetch wait on Tansu);
- :mod:`streams.worker`: running the app inside an asyncio program, and
  ``python -m streams.worker``.

May import: :mod:`edge`, :mod:`responders`, :mod:`triage`, :mod:`promises`,
:mod:`brokers`, :mod:`schedules`, :mod:`records` (everything but :mod:`offhours`).
"""
