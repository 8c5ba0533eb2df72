"""Kafka without Faust: the brokers offhours starts and the clients it uses.

- :mod:`brokers.tansu`: the embedded, memory-only broker (Tansu), the default;
- :mod:`brokers.apache`: Apache Kafka on loopback (one KRaft node or a cluster),
  resolved by Maven from ``kafka-broker.pom.xml``;
- :mod:`brokers.client`: aiokafka client options (TLS, SASL) and topic creation;
- :mod:`brokers.decisions_tail`: ``offhours decisions``, the decisions topic as JSON lines.

May import: :mod:`schedules`, :mod:`records` (today neither); not :mod:`promises`,
which shares its layer. The settings types of :mod:`streams.settings` are imported for
type checking only.
"""
