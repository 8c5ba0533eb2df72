"""What the edge writes to the log: no secrets in access lines, refusals rate-limited."""

from __future__ import annotations

import logging

import pytest

from edge.ratelog import RateLimitedLog
from tests.support.edge_logging import FakeClock


class TestRateLimitedLog:
    @pytest.mark.parametrize(
        ("times", "expected"),
        [
            pytest.param([0, 1, 2], ["refused 1"], id="burst_logs_once"),
            pytest.param([0, 30, 59.9, 60], ["refused 1", "refused 4 (and 2 more since the last such line)"],
                         id="next_line_after_the_interval_counts_the_held"),
            pytest.param([0, 60, 120], ["refused 1", "refused 2", "refused 3"], id="sparse_refusals_all_logged"),
        ],
    )
    def test_one_line_per_interval(self, caplog: pytest.LogCaptureFixture, times: list[float], expected: list[str]) -> None:
        """Refusals of one key log at most one line per interval; the next line says how many were held."""
        clock = FakeClock()
        limited = RateLimitedLog(logging.getLogger("test.ratelog"), interval=60, clock=clock)
        with caplog.at_level(logging.WARNING, logger="test.ratelog"):
            for n, at in enumerate(times, 1):
                clock.now = 1000.0 + at
                limited.warning("meta", "refused %d", n)
        assert expected == [r.getMessage() for r in caplog.records]

    def test_keys_are_separate(self, caplog: pytest.LogCaptureFixture) -> None:
        """A flood on one webhook does not hide the first refusal of another."""
        limited = RateLimitedLog(logging.getLogger("test.ratelog"), interval=60, clock=FakeClock())
        with caplog.at_level(logging.WARNING, logger="test.ratelog"):
            for key in ("meta", "meta", "x", "meta", "x"):
                limited.warning(key, "%s refused", key)
        assert ["meta refused", "x refused"] == [r.getMessage() for r in caplog.records]

