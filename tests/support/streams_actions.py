"""What ``tests/integration/streams/test_actions.py`` and ``tests/integration/streams/test_escalations.py`` share (they were one module, tests/streams/test_actions.py).
"""

from __future__ import annotations

from edge.actions import KafkaActionSink
from records.actions import StaffAction
from streams.settings import Settings


async def record_actions(settings: Settings, *actions: StaffAction) -> None:
    """Produce actions the way the operations API does (edge.actions.KafkaActionSink)."""
    sink = KafkaActionSink(settings.bootstrap_servers, settings.ops.actions_topic, partitions=settings.partitions)
    await sink.start()
    try:
        for action in actions:
            await sink.record(action)
    finally:
        await sink.stop()

