"""Prometheus metrics of one offhours process.

One :class:`Metrics` per process, built by the entry point and handed to whatever
records into it (the triage agent, the webhooks, the responders); it owns its own
:class:`~prometheus_client.CollectorRegistry`, so two apps in one process (tests) never
share counters. ``/metrics`` serves :meth:`Metrics.exposition`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from promises.sla import FirstResponse

CONTENT_TYPE = CONTENT_TYPE_LATEST
LAG_INTERVAL = 5.0

log = logging.getLogger(__name__)

# Seconds from webhook receipt (or the event's `at` when no receipt time is known) to decision.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Seconds a customer waited for a first staff reply: minutes in open hours, up to days
# over a closed weekend or holiday (1m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h, 1d, 2d, 3d, 7d).
FIRST_RESPONSE_BUCKETS = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0, 259200.0, 604800.0
)


class Metrics:
    """The counters, gauges and histograms offhours exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._decision_children: dict[tuple[str, str], Counter] = {}
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
        self.first_response = Histogram(
            "offhours_first_response_seconds",
            "Seconds from a customer's first waiting message to the first staff reply, by team and mode",
            ["team", "mode"],
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=self.registry,
        )
        # Exposed as offhours_first_response_breaches_total (the client adds _total).
        self.first_response_breaches = Counter(
            "offhours_first_response_breaches",
            "First responses slower than the team's target for the mode, by team and mode",
            ["team", "mode"],
            registry=self.registry,
        )
        # Exposed as offhours_promise_breaches_total.
        self.promise_breaches = Counter(
            "offhours_promise_breaches",
            "Acknowledged conversations with no staff reply by the promised reply-by time, by team",
            ["team", "kind"],
            registry=self.registry,
        )
        # Staff notifications by notifier (the notify URI's scheme: slack, teams, mailto,
        # webhook, telegram) and kind (route, page, escalation, reminder, handover,
        # ack_failed, window): exposed as offhours_notifications_sent_total and
        # offhours_notifications_failed_total (given up: permanent or out of retries).
        self.notifications_sent = Counter(
            "offhours_notifications_sent",
            "Staff notifications delivered, by notifier and kind",
            ["notifier", "kind"],
            registry=self.registry,
        )
        self.notifications_failed = Counter(
            "offhours_notifications_failed",
            "Staff notifications given up (permanent failure or retries exhausted), by notifier and kind",
            ["notifier", "kind"],
            registry=self.registry,
        )
        self.escalation_steps = Counter(
            "offhours_escalation_steps",
            "Escalation steps sent (a routed message not claimed in time), by team",
            ["team"],
            registry=self.registry,
        )
        self.reminders = Counter(
            "offhours_reminders",
            "Follow-through reminders sent (reply-by passed, claim unanswered), by team",
            ["team"],
            registry=self.registry,
        )
        self.handovers = Counter(
            "offhours_handovers",
            "Handover digests sent at a team's opening (one per worker holding part of the backlog), by team",
            ["team"],
            registry=self.registry,
        )

        self.coverage_applied = Gauge(
            "offhours_coverage_version_applied",
            "The coverage version this process's worker decides with",
            registry=self.registry,
        )
        self.coverage_refused = Gauge(
            "offhours_coverage_version_refused",
            "A newer coverage version this process's worker could not apply (0: none)",
            registry=self.registry,
        )

    def decision(self, action: str, mode: str) -> Counter:
        """``decisions{action, mode}``'s child, looked up once per label pair (per event it
        was a lock and a label tuple for each decision)."""
        children = self._decision_children
        child = children.get((action, mode))
        if child is None:
            child = children[action, mode] = self.decisions.labels(action=action, mode=mode)
        return child

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)

    def count_events_in(self, events: Iterable[HasChannel]) -> None:
        """Count accepted events by channel (the webhooks' ``on_produced`` hook)."""
        for event in events:
            self.events_in.labels(channel=event.channel).inc()


def observe_first_response(metrics: Metrics, response: FirstResponse, target: timedelta | None) -> None:
    """Record one first response: its wait in the histogram, and a breach when slower than ``target``.

    ``target`` is the team's target for the response's mode
    (``team.escalation.target_for(response.mode)``); None counts no breach. The breach
    rule is :meth:`promises.sla.FirstResponse.breaches`, the one the SLA report uses.
    """
    labels = {"team": response.team, "mode": response.mode}
    metrics.first_response.labels(**labels).observe(response.seconds)
    if response.breaches(target):
        metrics.first_response_breaches.labels(**labels).inc()


class HasChannel(Protocol):
    """Anything with an event's ``channel`` (README: Events; a :class:`~records.wire.SocialEvent`)."""

    channel: str


class PartitionLike(Protocol):
    """A topic partition as Faust and aiokafka name it (``TP``)."""

    topic: str
    partition: int


class LagSource(Protocol):
    """The part of a Faust consumer the lag gauge reads (``app.consumer``)."""

    def assignment(self) -> set[PartitionLike]: ...

    def highwaters(self, *partitions: PartitionLike) -> Awaitable[Mapping[PartitionLike, int]]: ...

    def position(self, tp: PartitionLike) -> Awaitable[int | None]: ...


async def record_consumer_lag(consumer: LagSource, topic: str, metrics: Metrics) -> dict[int, int]:
    """Set ``consumer_lag{topic,partition}`` for the partitions of ``topic`` held now.

    Lag is the broker's highwater minus the consumer's position, never below zero
    (Tansu reports the highwater as the base offset of the last batch + 1, so a
    consumer that read the whole batch can be "ahead"). The gauge holds only the
    partitions held now, so a rebalance leaves no stale series behind (one topic per
    process). Returns the lag by partition.
    """
    held: Sequence[PartitionLike] = sorted(
        (tp for tp in consumer.assignment() if tp.topic == topic), key=lambda tp: tp.partition
    )
    highwaters = await consumer.highwaters(*held) if held else {}
    lags: dict[int, int] = {}
    for tp in held:
        position = await consumer.position(tp)
        highwater = highwaters.get(tp)
        if position is None or highwater is None:
            continue
        lags[tp.partition] = max(0, highwater - position)
    # Cleared and set with no await in between: a scrape (same event loop) never sees a gap.
    metrics.consumer_lag.clear()
    for partition, lag in lags.items():
        metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)
    return lags


async def track_consumer_lag(
    consumer: LagSource, topic: str, metrics: Metrics, *, interval: float = LAG_INTERVAL
) -> None:
    """Update the lag gauge every ``interval`` seconds until cancelled; a failed pass is logged."""
    while True:
        try:
            await record_consumer_lag(consumer, topic, metrics)
        except Exception:
            # The broker may be rebalancing or briefly away; the next pass tries again.
            log.warning("consumer lag of %s could not be read; retrying in %s s", topic, interval, exc_info=True)
        await asyncio.sleep(interval)
