"""An aiokafka consumer with its real fetch and seek paths and no broker.

For tests that drive Faust's and aiokafka's own fetch code (the rebalance fixes of
``streams/transport.py``): records are put where aiokafka's background fetch would
put them, and nothing ever connects.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.types import TP


class BrokerlessConsumer(AIOKafkaConsumer):
    """An AIOKafkaConsumer never started: nothing to warn about when it is collected."""

    def __del__(self) -> None:
        pass


def brokerless_consumer(tps: Iterable[TP]) -> AIOKafkaConsumer:
    """An aiokafka consumer holding ``tps`` at offset 0, with its real fetch path and no broker."""
    tps = set(tps)
    subscription = SubscriptionState()
    subscription.subscribe(topics={tp.topic for tp in tps})
    subscription.assign_from_subscribed(tps)
    for tp in tps:
        subscription.seek(tp, 0)
    fetcher = object.__new__(Fetcher)
    fetcher._subscriptions = subscription
    fetcher._records = collections.OrderedDict()
    fetcher._fetch_waiters = set()
    fetcher._wait_consume_future = None
    fetcher._loop = asyncio.get_running_loop()
    fetcher._closed = False
    consumer = object.__new__(BrokerlessConsumer)
    consumer._fetcher = fetcher
    consumer._subscription = subscription
    consumer._closed = False
    return consumer
