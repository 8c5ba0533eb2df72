"""Prometheus metrics of one offhours process.

One :class:`Metrics` per process, built by the entry point and handed to whatever
records into it (the triage agent, the webhooks, the responders); it owns its own
:class:`~prometheus_client.CollectorRegistry`, so two apps in one process (tests) never
share counters. ``/metrics`` serves :meth:`Metrics.exposition`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds from webhook receipt (or the event's `at` when no receipt time is known) to decision.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The counters, gauges and histograms offhours exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_in = Counter(
            "offhours_events_in", "Social events received, by channel", ["channel"], registry=self.registry
        )
        self.decisions = Counter(
            "offhours_decisions", "Decisions made, by action and mode", ["action", "mode"], registry=self.registry
        )
        self.acks_sent = Counter(
            "offhours_acks_sent", "Acknowledgments delivered to customers, by channel", ["channel"], registry=self.registry
        )
        self.acks_failed = Counter(
            "offhours_acks_failed", "Acknowledgments that could not be delivered, by channel", ["channel"], registry=self.registry
        )
        self.dead_letters = Counter(
            "offhours_dead_letters", "Inputs sent to the dead-letter topic, by source topic", ["topic"], registry=self.registry
        )
        self.consumer_lag = Gauge(
            "offhours_consumer_lag", "Events not yet consumed, by topic and partition", ["topic", "partition"], registry=self.registry
        )
        self.webhook_to_decision = Histogram(
            "offhours_webhook_to_decision_seconds",
            "Seconds from webhook receipt to decision",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
