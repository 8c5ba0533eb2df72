"""``offhours coverage ...`` run as a user runs it: a subprocess, its output and exit code."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from offhours import coverage_commands as coverage_cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = str(ROOT / "examples" / "coverage.yaml")
DATA = ROOT / "tests" / "support" / "schedules_data"


def offhours(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offhours", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def run_in_process(capsys, clock_at: datetime, *args: str) -> tuple[int, str]:
    """``offhours coverage ARGS`` in this process, its clock fixed at ``clock_at``; exit code and stdout."""
    parser = argparse.ArgumentParser(prog="offhours")
    coverage_cli.register(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["coverage", *args])
    capsys.readouterr()
    code = parsed.handler(parsed, clock=lambda: clock_at)
    return code, capsys.readouterr().out


def week_rows(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The rows of a week view by date, without the weekday: {"2026-12-25": "00:00-24:00 closed ..."}."""
    return {line[4:14]: line[16:] for line in result.stdout.splitlines()[1:]}


# Christmas without an override: two adjacent public holidays, then the weekend.
CHRISTMAS = """\
teams:
  care-it:
    timezone: Europe/Rome
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
      sat: ["10:00-18:00 reduced"]
    holidays: {country: IT}
"""


@pytest.fixture(scope="module")
def valid_check() -> subprocess.CompletedProcess[str]:
    """One run of ``coverage check`` on the example coverage file."""
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
        """Prints exactly the object of README: Command line, instants in the team's offset, to the second."""
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

    @pytest.mark.parametrize(
        ("at", "expected"),
        [
            pytest.param(
                "2026-04-06T12:00",
                {"mode": "closed", "source": "holiday", "since": "2026-04-04T18:00:00+02:00", "until": "2026-04-07T09:00:00+02:00"},
                id="easter_monday",
            ),
            pytest.param(
                "2026-12-27T12:00",
                {"mode": "closed", "source": "hours", "since": "2026-12-24T14:00:00+01:00", "until": "2026-12-28T09:00:00+01:00"},
                id="sunday_after_natale_override",
            ),
        ],
    )
    def test_since_until_span_the_whole_stretch_across_rules(self, at, expected):
        """since/until bound the whole stretch of the mode, across days and rules; source is the rule at the instant."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-it", "--at", at)
        assert expected == {key: json.loads(result.stdout)[key] for key in expected}

    def test_at_now_reads_the_clock(self, capsys):
        """--at now is the clock's instant, printed in the team's offset to the second."""
        clock_at = datetime(2026, 11, 23, 20, 14, 5, 734_000, tzinfo=UTC)
        now = run_in_process(capsys, clock_at, "at", EXAMPLE, "--team", "care-it", "--at", "now")
        typed = run_in_process(capsys, clock_at, "at", EXAMPLE, "--team", "care-it", "--at", "2026-11-23T21:14:05")
        assert (0, "2026-11-23T21:14:05+01:00") == (now[0], json.loads(now[1])["at"])
        assert typed == now

    def test_at_defaults_to_now(self, capsys):
        """Without --at the answer is for now: the same as --at now."""
        clock_at = datetime(2026, 12, 26, 8, 0, tzinfo=UTC)
        omitted = run_in_process(capsys, clock_at, "at", EXAMPLE, "--team", "care-it")
        now = run_in_process(capsys, clock_at, "at", EXAMPLE, "--team", "care-it", "--at", "now")
        assert (0, "2026-12-26T09:00:00+01:00", "override") == (
            omitted[0], json.loads(omitted[1])["at"], json.loads(omitted[1])["source"]
        )
        assert now == omitted

    def test_at_now_with_the_real_clock(self):
        """The installed command answers --at now with the contract object (whatever the date)."""
        result = offhours("coverage", "at", EXAMPLE, "--team", "care-it", "--at", "now")
        printed = json.loads(result.stdout)
        assert (0, ["team", "at", "mode", "since", "until", "next_open", "on_call", "source"]) == (result.returncode, list(printed))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", printed["at"]), printed["at"]

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

    @pytest.mark.parametrize(
        ("first", "expected"),
        [
            pytest.param(
                "2026-12-24",
                {
                    "2026-12-24": "00:00-09:00 closed | 09:00-14:00 open | 14:00-24:00 closed (Natale)",
                    "2026-12-25": "00:00-24:00 closed (Natale)",
                    "2026-12-26": "00:00-24:00 closed (Natale)",
                    "2026-12-27": "00:00-24:00 closed",
                    "2026-12-28": "00:00-09:00 closed | 09:00-19:00 open | 19:00-24:00 reduced",
                },
                id="override_ends_before_the_weekend",
            ),
            pytest.param(
                "2026-04-03",
                {
                    "2026-04-04": "00:00-10:00 closed | 10:00-18:00 reduced | 18:00-24:00 closed",
                    "2026-04-05": "00:00-24:00 closed (Easter Sunday)",
                    "2026-04-06": "00:00-24:00 closed (Easter Monday)",
                    "2026-04-07": "00:00-09:00 closed | 09:00-19:00 open | 19:00-24:00 reduced",
                },
                id="adjacent_holidays",
            ),
        ],
    )
    def test_each_row_names_only_what_decides_it(self, first, expected):
        """A holiday or an override is named on the hours it decides and nowhere else."""
        rows = week_rows(offhours("coverage", "week", EXAMPLE, "--team", "care-it", "--from", first))
        assert expected == {day: rows[day].split("  on call:")[0] for day in expected}

    def test_adjacent_public_holidays_each_named(self, tmp_path):
        """Christmas Day and Saint Stephen's Day, one closed stretch with the weekend, are each named on their day."""
        path = tmp_path / "christmas.yaml"
        path.write_text(CHRISTMAS)
        rows = week_rows(offhours("coverage", "week", str(path), "--team", "care-it", "--from", "2026-12-24"))
        expected = {
            "2026-12-24": "00:00-09:00 closed | 09:00-19:00 open | 19:00-24:00 reduced",
            "2026-12-25": "00:00-24:00 closed (Christmas Day)",
            "2026-12-26": "00:00-24:00 closed (Saint Stephen's Day)",
            "2026-12-27": "00:00-24:00 closed",
            "2026-12-28": "00:00-09:00 closed | 09:00-19:00 open | 19:00-24:00 reduced",
        }
        assert expected == {day: rows[day].split("  on call:")[0] for day in expected}

    @pytest.mark.parametrize("args", [pytest.param((), id="from_omitted"), pytest.param(("--from", "now"), id="from_now")])
    def test_week_from_today_in_the_team_zone(self, capsys, args):
        """Without --from (or with --from now) the week starts today in the team's zone, by the clock."""
        # 23:30 UTC on the 24th is already the 25th in Rome.
        clock_at = datetime(2026, 12, 24, 23, 30, tzinfo=UTC)
        code, out = run_in_process(capsys, clock_at, "week", EXAMPLE, "--team", "care-it", *args)
        _, dated = run_in_process(capsys, clock_at, "week", EXAMPLE, "--team", "care-it", "--from", "2026-12-25")
        assert (0, "care-it (Assistenza Italia), Europe/Rome, week from 2026-12-25") == (code, out.splitlines()[0])
        assert dated == out

    def test_help_teaches(self):
        """--help of each command gives an example."""
        outputs = [offhours("coverage", command, "--help").stdout for command in ("check", "at", "week")]
        assert [True, True, True] == ["example" in text and "offhours coverage" in text for text in outputs]

    @pytest.mark.parametrize(
        ("command", "fragments"),
        [
            pytest.param("at", ["--at now", "'now' (default)"], id="at"),
            pytest.param("week", ["--from now", "today in the team's time zone"], id="week"),
        ],
    )
    def test_help_teaches_now(self, command, fragments):
        """--help says that now is the default and shows it in an example."""
        text = " ".join(offhours("coverage", command, "--help").stdout.split())
        assert [True] * len(fragments) == [fragment in text for fragment in fragments]
