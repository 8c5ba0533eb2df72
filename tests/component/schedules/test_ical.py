"""iCalendar export of coverage, import of closures from .ics files, `coverage ics`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import icalendar
import pytest

from schedules import load_coverage
from tests.support.schedules_ical import EXAMPLE, ROOT, coverage_events, rome


@pytest.fixture(scope="module")
def care_it():
    return load_coverage(EXAMPLE).teams["care-it"]


def run_ics(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offhours", "coverage", "ics", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60,
    )


class TestIcsCommand:
    def test_writes_calendar_to_stdout(self, care_it):
        """`coverage ics` prints a calendar of whole local days from --from for --days."""
        result = run_ics(str(EXAMPLE), "--team", "care-it", "--from", "2026-12-07", "--days", "7")
        assert 0 == result.returncode, result.stderr
        calendar = icalendar.Calendar.from_ical(result.stdout)
        expected = [(s.start, s.end) for s in care_it.pieces(rome(2026, 12, 7), rome(2026, 12, 14))]
        assert expected == [(e.start, e.end) for e in coverage_events(calendar)]

    def test_writes_calendar_to_file(self, tmp_path):
        """With -o the calendar goes to the file."""
        out = tmp_path / "care-it.ics"
        result = run_ics(str(EXAMPLE), "--team", "care-it", "--from", "2026-12-07", "--days", "2", "-o", str(out))
        assert (0, "") == (result.returncode, result.stdout)
        assert "VCALENDAR" == icalendar.Calendar.from_ical(out.read_bytes()).name

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            pytest.param(("--team", "care-fr", "--from", "2026-12-07"), "no team 'care-fr'", id="unknown_team"),
            pytest.param(("--team", "care-it", "--from", "07/12/2026"), "YYYY-MM-DD", id="bad_date"),
        ],
    )
    def test_bad_team_or_date_exits_2_with_message(self, args, message):
        """An unknown team or an unreadable date exits 2 and says what to write."""
        result = run_ics(str(EXAMPLE), *args)
        assert 2 == result.returncode
        assert message in result.stderr

    def test_invalid_file_exits_2_with_problems(self, tmp_path):
        """An invalid coverage file exits 2 with its problems on stderr."""
        path = tmp_path / "broken.yaml"
        path.write_text("teams:\n  care-it:\n    hours: {mon: [\"09:00-19:00 open\"]}\n")
        result = run_ics(str(path), "--team", "care-it", "--from", "2026-12-07")
        assert 2 == result.returncode
        assert "broken.yaml" in result.stderr
        assert "" == result.stdout

    def test_help_teaches_with_an_example(self):
        """--help shows an example command line."""
        result = run_ics("--help")
        assert 0 == result.returncode
        assert "offhours coverage ics examples/coverage.yaml --team care-it" in result.stdout

