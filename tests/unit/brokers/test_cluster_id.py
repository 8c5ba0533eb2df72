"""KRaft cluster ids: the storage tool must be able to read every id we make."""

from __future__ import annotations

import base64
import uuid

import pytest

from brokers import apache


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """An id starting with ``-`` reads as an option to ``kafka-storage format``: it fails.

    A UUID whose first byte is 0xF8 encodes to ``-`` first (one run in 64 did so by
    chance and the broker never started); the next UUID is taken instead.
    """
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=b"\x10" + bytes(15))
    assert base64.urlsafe_b64encode(dash_first.bytes).decode().startswith("-")
    drawn = iter([dash_first, plain])
    monkeypatch.setattr(apache.uuid, "uuid4", lambda: next(drawn))

    chosen = apache.new_cluster_id()

    assert chosen == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")
    assert len(chosen) == 22


def test_cluster_ids_are_distinct_base64_uuids() -> None:
    ids = {apache.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for chosen in ids:
        assert not chosen.startswith("-")
        assert uuid.UUID(bytes=base64.urlsafe_b64decode(chosen + "=="))
