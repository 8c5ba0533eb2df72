"""``offhours sla report`` as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import subprocess
import textwrap

import orjson
import pytest

from tests.support.offhours_sla_cli import EVENTS, TABLE, offhours
from tests.support.sla import COVERAGE


def file_line(coverage: str) -> str:
    """The report's first line when it used the coverage FILE without a broker."""
    return f"coverage: file {coverage} (OFFHOURS_BROKER_URL is not set; the service's coverage may differ)\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A coverage file with targets and an events file with duplicates, an invalid line and an unknown account."""
    folder = tmp_path_factory.mktemp("sla")
    coverage = folder / "coverage.yaml"
    coverage.write_text(textwrap.dedent(COVERAGE), encoding="utf-8")
    events = folder / "events.jsonl"
    events.write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return str(coverage), str(events)


@pytest.fixture(scope="module")
def table_run(files: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    """One run of the report as a table on the events file."""
    coverage, events = files
    return offhours("sla", "report", coverage, "--events", events)


class TestSlaReport:
    """The report on a small events file."""

    def test_table(self, table_run, files):
        """Exit 0, the coverage used, and an aligned table per team and mode: count, median, p90, target, breaches."""
        coverage, _ = files
        assert (0, file_line(coverage) + TABLE) == (table_run.returncode, table_run.stdout)

    def test_skipped_inputs_on_stderr_with_line_numbers(self, table_run):
        """The invalid line and the unknown account are named on stderr, with how many were skipped."""
        lines = table_run.stderr.splitlines()
        skipped = [line.split(": ")[:2] for line in lines if line.startswith("skipped ")]
        expected = (
            [["skipped line 8", "not JSON"], ["skipped line 10", "account 'acme.fr.telegram' is not under any team's accounts"]],
            "2 of 12 inputs skipped",
        )
        assert expected == (skipped, lines[-1])

    def test_json_lines(self, files):
        """--json prints one object per team and mode, durations in seconds."""
        coverage, events = files
        result = offhours("sla", "report", coverage, "--events", events, "--json")
        expected = [
            {"team": "care-it", "mode": "open", "count": 1, "median": 2400, "p90": 2400, "target": 7200, "breaches": 0},
            {"team": "care-it", "mode": "reduced", "count": 2, "median": 1200, "p90": 5400, "target": 3600, "breaches": 1},
            {"team": "care-us", "mode": "open", "count": 1, "median": 300, "p90": 300, "target": None, "breaches": 0},
        ]
        expected = [{**row, "coverage_version": None} for row in expected]
        assert (0, expected, True) == (
            result.returncode, [orjson.loads(line) for line in result.stdout.splitlines()],
            file_line(coverage) in result.stderr,
        )

    @pytest.mark.parametrize(
        ("window", "expected"),
        [
            pytest.param(["--from", "2026-11-23T19:30"], [("care-it", "reduced", 1)], id="no_offset_is_utc"),
            pytest.param(["--from", "2026-11-23T19:30+01:00"], [("care-it", "reduced", 2)], id="with_offset"),
            pytest.param(["--to", "2026-11-23T10:05+01:00"], [("care-it", "open", 1)], id="to_excludes_later_customers"),
            pytest.param(["--from", "2026-11-24T00:00Z", "--to", "2026-11-25T00:00Z"], [], id="empty_window"),
        ],
    )
    def test_from_to_window(self, files, window, expected):
        """--from/--to keep the responses whose customer message is in [from, to); TIME without offset is UTC."""
        coverage, events = files
        result = offhours("sla", "report", coverage, "--events", events, "--json", *window)
        rows = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert (0, expected) == (result.returncode, [(r["team"], r["mode"], r["count"]) for r in rows])

    def test_events_from_stdin(self, files):
        """--events - reads the events from standard input."""
        coverage, _ = files
        result = offhours("sla", "report", coverage, "--events", "-", stdin="\n".join(EVENTS) + "\n")
        assert (0, file_line(coverage) + TABLE) == (result.returncode, result.stdout)

    def test_help_teaches_with_an_example(self):
        """--help shows an example command and says that TIME without an offset is UTC."""
        result = offhours("sla", "report", "--help")
        expected = (0, True, True)
        assert expected == (result.returncode, "offhours sla report examples/coverage.yaml --events" in result.stdout, "UTC" in result.stdout)


class TestSlaReportErrors:
    """Usage errors exit 2 with the reason and no traceback."""

    def test_invalid_coverage_exits_2_with_problems(self, tmp_path, files):
        """An invalid coverage file is rejected as 'coverage check' rejects it, listing the problem."""
        _, events = files
        bad = tmp_path / "bad.yaml"
        bad.write_text("teams:\n  care-it:\n    timezone: Europe/Rom\n    hours: {daily: ['09:00-17:00 open']}\n", encoding="utf-8")
        result = offhours("sla", "report", str(bad), "--events", events)
        expected = (2, "", True, True, False)
        actual = (
            result.returncode,
            result.stdout,
            "invalid coverage file" in result.stderr,
            f"{bad}:3: team 'care-it': unknown time zone 'Europe/Rom'" in result.stderr,
            "Traceback" in result.stderr,
        )
        assert expected == actual

    def test_no_broker_and_no_events_exits_2_with_the_hint(self, files):
        """Without --events and without OFFHOURS_BROKER_URL it says to pass one or set the other."""
        coverage, _ = files
        result = offhours("sla", "report", coverage)
        expected = (2, "", True)
        actual = (result.returncode, result.stdout, "--events" in result.stderr and "OFFHOURS_BROKER_URL" in result.stderr)
        assert expected == actual

    @pytest.mark.parametrize(
        "arguments",
        [
            pytest.param(["--from", "yesterday"], id="unreadable_time"),
            pytest.param(["--from", "2026-11-24T00:00Z", "--to", "2026-11-23T00:00Z"], id="to_before_from"),
            pytest.param(["--events", "no/such/events.jsonl"], id="missing_events_file"),
        ],
    )
    def test_bad_arguments_exit_2(self, files, arguments):
        """A bad TIME, an empty window or an unreadable events file exits 2 without a traceback."""
        coverage, events = files
        if "--events" not in arguments:
            arguments = [*arguments, "--events", events]
        result = offhours("sla", "report", coverage, *arguments)
        assert (2, "", False) == (result.returncode, result.stdout, "Traceback" in result.stderr)

