"""The Faust app on the real embedded broker: the triage agent, its topics, reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest

from schedules import load_coverage
from streams.app import CoverageHolder
from tests.conftest import EXAMPLE_COVERAGE


@pytest.fixture
def coverage():
    return load_coverage(EXAMPLE_COVERAGE)


class TestCoverageHolder:
    def test_invalid_file_keeps_the_coverage_in_use(self, tmp_path: Path, coverage) -> None:
        """Reloading an invalid file returns False and leaves coverage and policy as they were."""
        holder = CoverageHolder(coverage, EXAMPLE_COVERAGE)
        broken = tmp_path / "coverage.yaml"
        broken.write_text("teams:\n  care-it:\n    timezone: Mars/Olympus\n")
        before = (holder.coverage, holder.triage)
        assert not holder.reload(broken)
        assert before == (holder.coverage, holder.triage)

    def test_valid_file_is_used_from_the_next_event(self, tmp_path: Path, coverage) -> None:
        """A valid file replaces the coverage and the policy bound to it."""
        holder = CoverageHolder(coverage, EXAMPLE_COVERAGE)
        smaller = tmp_path / "coverage.yaml"
        smaller.write_text(
            "teams:\n  care-us:\n    timezone: America/New_York\n    locale: en\n"
            "    accounts: [acme_us_x]\n    hours:\n      daily: ['08:00-20:00 open']\n"
        )
        assert holder.reload(smaller)
        assert (["care-us"], smaller) == (list(holder.coverage.teams), holder.path)

