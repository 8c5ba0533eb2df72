"""The webhook app end to end over real HTTP, with an in-memory sink."""

from __future__ import annotations

from typing import Any

import pytest

from edge.config import EdgeSettings


class TestSettings:
    @pytest.mark.parametrize(
        ("value", "expected_seconds"),
        [
            pytest.param("3600", 3600, id="seconds_text"),
            pytest.param("PT48H", 172800, id="iso_duration"),
            pytest.param("01:30:00", 5400, id="clock_form"),
            pytest.param(90, 90, id="number"),
        ],
    )
    def test_dedupe_ttl_forms(self, value: Any, expected_seconds: int) -> None:
        """dedupe_ttl takes seconds (also as text, as environment variables are), HH:MM:SS or ISO 8601."""
        assert expected_seconds == EdgeSettings(dedupe_ttl=value).dedupe_ttl.total_seconds()

