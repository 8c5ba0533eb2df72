"""``offhours coverage ...`` run as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "coverage.yaml")
DATA = Path(__file__).resolve().parent / "data"


def offhours(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offhours", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


@pytest.fixture(scope="module")
def valid_check() -> subprocess.CompletedProcess[str]:
    """One run of ``coverage check`` on the CONTRACT example."""
    return offhours("coverage", "check", EXAMPLE, "--from", "2026-11-23")


@pytest.fixture(scope="module")
def every_problem() -> subprocess.CompletedProcess[str]:
    """One run of ``coverage check`` on a file with every kind of fault."""
    return offhours("coverage", "check", str(DATA / "every_problem.yaml"))


# (line, fragments of that line's problem: what is wrong and what to write instead)
PROBLEMS = [
    pytest.param(4, ["unknown time zone 'Europe/Rom'", "did you mean 'Europe/Rome'"], id="unknown_time_zone"),
    pytest.param(5, ["unknown key 'colour'", "allowed keys"], id="unknown_key"),
    pytest.param(7, ['"09:00-19:00 open"', "overlaps", '"18:00-20:00 reduced"', "end the first at 18:00"], id="overlapping_spans"),
    pytest.param(8, ["bad time '9.00'", "write HH:MM"], id="bad_time_syntax"),
    pytest.param(9, ["day 'wed' is named by both 'tue-wed' (line 8) and 'wed'", "one key only"], id="day_named_twice"),
    pytest.param(12, ['"22:00-04:00 reduced"', "crosses midnight and overlaps", '"03:00-05:00 open"', "end the first at 03:00"], id="midnight_crossing_overlaps_next_day"),
    pytest.param(13, ["unknown mode 'sometimes'", "write open, reduced or closed"], id="unknown_mode"),
    pytest.param(14, ["unknown holiday country 'XX'", "write an ISO 3166 country code"], id="unknown_holiday_country"),
    pytest.param(17, ["overlaps override 2026-12-24 14:00 to 2026-12-27 00:00 (line 16)", "start the second at"], id="overlapping_overrides"),
    pytest.param(19, ["'nobody' is not under 'staff'", "add 'nobody:'"], id="rotation_member_not_in_staff"),
    pytest.param(22, ["'on_call', 'overrides'", "overlaps override", "(line 21)"], id="overlapping_on_call_overrides"),
    pytest.param(26, ["'12 hours' is not a duration", "write a whole number and a unit"], id="bad_duration"),
    pytest.param(27, ["'luca' is not under 'staff'"], id="reduced_staff_not_in_staff"),
    pytest.param(29, ["not a valid regular expression", "fix the pattern"], id="bad_regex"),
    pytest.param(30, ["unknown key 'tone'", "allowed keys"], id="unknown_triage_key"),
]


class TestCheck:
    def test_valid_file(self, valid_check):
        """A valid file exits 0 with one summary line per team."""
        expected = (0, ["care-it", "care-us"])
        assert expected == (valid_check.returncode, [line.split(" ")[0] for line in valid_check.stdout.splitlines()])

    def test_gap_warnings_on_stderr(self, valid_check):
        """Coverage gaps are warnings on stderr, not failures."""
        result = valid_check
        assert ["warning: team 'care-us': nobody is ever on call in reduced and closed hours; add 'on_call' with a rotation"] == result.stderr.splitlines()

    def test_invalid_file_exits_2_listing_all(self, every_problem):
        """An invalid file exits 2, lists every problem on stderr and no traceback."""
        expected = (2, "", len(PROBLEMS), False)
        problem_lines = [line for line in every_problem.stderr.splitlines() if line.startswith("  ")]
        actual = (every_problem.returncode, every_problem.stdout, len(problem_lines), "Traceback" in every_problem.stderr)
        assert expected == actual

    @pytest.mark.parametrize(("line", "fragments"), PROBLEMS)
    def test_each_problem_names_line_and_fix(self, every_problem, line, fragments):
        """Each problem names the file and line, what is wrong and what to write instead."""
        prefix = f"  {DATA / 'every_problem.yaml'}:{line}: "
        found = [text for text in every_problem.stderr.splitlines() if text.startswith(prefix) and all(f in text for f in fragments)]
        assert 1 == len(found), every_problem.stderr

    @pytest.mark.parametrize(
        ("name", "fragment"),
        [
            pytest.param("not_yaml.yaml", "not_yaml.yaml:5: not valid YAML", id="not_yaml"),
            pytest.param("not_mapping.yaml", "not_mapping.yaml:1: the file must be a mapping", id="not_a_mapping"),
            pytest.param("absent.yaml", "absent.yaml: file not found", id="file_missing"),
        ],
    )
    def test_unreadable_file_no_traceback(self, name, fragment):
        """Files that are not coverage at all are reported without a traceback."""
        result = offhours("coverage", "check", str(DATA / name))
        assert (2, True, False) == (result.returncode, fragment in result.stderr, "Traceback" in result.stderr)


class TestAt:
    @pytest.mark.parametrize(
        ("at", "expected_at"),
        [
            pytest.param("2026-11-23T21:14:05", "2026-11-23T21:14:05+01:00", id="naive_is_team_local"),
            pytest.param("2026-11-23T20:14:05Z", "2026-11-23T21:14:05+01:00", id="z_is_utc"),
            pytest.param("2026-11-23T15:14:05-05:00", "2026-11-23T21:14:05+01:00", id="other_offset"),
        ],
    )
    def test_contract_json(self, at, expected_at):
        """Prints exactly the CONTRACT §3 object, instants in the team's offset, to the second."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-it", "--at", at)
        expected = {
            "team": "care-it", "at": expected_at, "mode": "reduced",
            "since": "2026-11-23T19:00:00+01:00", "until": "2026-11-24T00:00:00+01:00",
            "next_open": "2026-11-24T09:00:00+01:00", "on_call": ["marta"], "source": "hours",
        }
        assert (0, expected) == (result.returncode, json.loads(result.stdout))

    def test_naive_time_in_spring_gap(self):
        """A naive --at inside the spring-forward gap is read as the first instant after it."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-us", "--at", "2026-03-08T02:30")
        assert "2026-03-08T03:00:00-04:00" == json.loads(result.stdout)["at"]

    def test_unknown_team_lists_teams(self):
        """An unknown team exits 2 and lists the teams of the file."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-fr", "--at", "2026-11-23T12:00")
        assert (2, True) == (result.returncode, "care-it, care-us" in result.stderr)

    def test_bad_time_shows_example(self):
        """A bad --at exits 2 with an example of a valid value."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-it", "--at", "yesterday 9pm")
        assert (2, True) == (result.returncode, "2026-11-23T21:14:05+01:00" in result.stderr)


class TestWeek:
    def test_week_view(self):
        """A row per day with its stretches and who is on call."""
        result = offhours("coverage", "week", EXAMPLE, "--team", "care-it", "--from", "2026-12-21")
        rows = result.stdout.splitlines()
        expected = (0, 8, "Thu 2026-12-24  00:00-09:00 closed | 09:00-14:00 open | 14:00-24:00 closed (Natale)  on call: luca")
        assert expected == (result.returncode, len(rows), rows[4])

    def test_help_teaches(self):
        """--help of each command gives an example."""
        outputs = [offhours("coverage", command, "--help").stdout for command in ("check", "at", "week")]
        assert [True, True, True] == ["example" in text and "offhours coverage" in text for text in outputs]
