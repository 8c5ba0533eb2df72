"""Fixtures of the streams tier."""

from __future__ import annotations

import pytest

from streams.settings import Settings


@pytest.fixture
def settings(stream_settings: Settings) -> Settings:
    """Stream settings with this test's own actions topic and delivery off (tests read the routes outbox)."""
    return stream_settings.with_overrides(
        ops=stream_settings.ops.model_copy(update={"actions_topic": f"{stream_settings.app_id}.actions"}),
        responders=stream_settings.responders.model_copy(update={"deliver": False}),
    )
