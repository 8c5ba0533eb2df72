"""Reconciliation's clients are all closed on stop, also when a broker is gone.

In the three-node cluster rounds a reconciliation pass fails while a node is down; the
worker then stops the reconciler and starts a fresh one at the next pass. A client that
fails to close must not leave the others open (they would leak a connection per pass).
"""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.reconcile import Reconciler
from streams.settings import Settings


class Client:
    def __init__(self, closed: list[str], name: str, fails: bool = False) -> None:
        self.closed, self.name, self.fails = closed, name, fails

    async def stop(self) -> None:
        self.closed.append(self.name)
        if self.fails:
            raise KafkaConnectionError(f"{self.name}: node 2 is down")

    close = stop


async def nothing(*_: object) -> None:
    return None


async def test_every_client_is_closed_when_one_fails_and_the_failure_is_raised() -> None:
    closed: list[str] = []
    reconciler = Reconciler(Settings(), nothing)
    reconciler._input = Client(closed, "input", fails=True)  # type: ignore[assignment]
    reconciler._decisions = Client(closed, "decisions")  # type: ignore[assignment]
    reconciler._watermarks = Client(closed, "watermarks")  # type: ignore[assignment]
    reconciler._admin = Client(closed, "admin")  # type: ignore[assignment]
    with pytest.raises(KafkaConnectionError, match="node 2 is down"):
        await reconciler.stop()
    assert ["admin", "decisions", "input", "watermarks"] == sorted(closed)
    await reconciler.stop()  # a second stop has nothing left to close
    assert 4 == len(closed)
