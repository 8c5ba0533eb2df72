"""Loading and validating coverage files (README: The coverage file)."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from schedules import CoverageInvalid, load_coverage, load_coverage_text

ROOT = Path(__file__).resolve().parents[3]

HEAD = """\
teams:
  t:
    timezone: Europe/Rome
"""


def problems_of(text: str, base_dir: Path | None = None) -> list[tuple[int | None, str]]:
    with pytest.raises(CoverageInvalid) as caught:
        load_coverage_text(textwrap.dedent(text), filename="bad.yaml", base_dir=base_dir)
    return [(p.line, str(p)) for p in caught.value.problems]


# (yaml, line, fragments of the problem text: what is wrong and what to write)
INVALID = [
    pytest.param(HEAD + "    hours: {mon: [\"09:00-19:00 open\", \"18:00-20:00 reduced\"]}\n", 4, ["09:00-19:00 open", "overlaps", "18:00-20:00 reduced", "end the first at 18:00"], id="overlapping_spans"),
    pytest.param(HEAD + "    hours:\n      mon-fri: [\"09:00-12:00 open\"]\n      fri: [\"13:00-14:00 open\"]\n", 6, ["day 'fri'", "'mon-fri' (line 5)", "one key only"], id="day_named_twice"),
    pytest.param(HEAD + "    hours:\n      fri: [\"20:00-03:00 reduced\"]\n      sat: [\"02:00-04:00 open\"]\n", 6, ["crosses midnight and overlaps", "(line 5)", "end the first at 02:00"], id="midnight_crossing_overlaps_next_day"),
    pytest.param("teams:\n  t:\n    timezone: Europe/Rom\n", 3, ["unknown time zone 'Europe/Rom'", "did you mean 'Europe/Rome'"], id="unknown_time_zone"),
    pytest.param(HEAD + "    hours: {mon: [\"09:00-19:00 opne\"]}\n", 4, ["unknown mode 'opne'", "did you mean 'open'", "open, reduced or closed"], id="unknown_mode"),
    pytest.param(HEAD + "    hours: {mon: [\"9.00-19:00 open\"]}\n", 4, ["bad time '9.00'", "HH:MM"], id="bad_time_syntax"),
    pytest.param(HEAD + "    hours: {mon: [\"09:00-24:30 open\"]}\n", 4, ["bad time '24:30'", "24:00 only as an end"], id="time_past_24"),
    pytest.param(HEAD + "    on_call:\n      rotation: {members: [ana, bob], start: \"2026-11-02 09:00\", every: 1w}\n    staff: {ana: {name: Ana}}\n", 5, ["'bob' is not under 'staff'", "add 'bob:'"], id="rotation_member_not_in_staff"),
    pytest.param(HEAD + "    overrides:\n      - {from: \"2026-12-24 14:00\", to: \"2026-12-27 00:00\", mode: closed}\n      - {from: \"2026-12-26 10:00\", to: \"2026-12-28 00:00\", mode: open}\n", 6, ["overlaps override 2026-12-24 14:00 to 2026-12-27 00:00 (line 5)", "start the second at 2026-12-27 00:00"], id="overlapping_overrides"),
    pytest.param(HEAD + "    holidays: {country: XY}\n", 4, ["unknown holiday country 'XY'", "ISO 3166"], id="unknown_holiday_country"),
    pytest.param(HEAD + "    holidays: {country: IT, subdivision: ZZ}\n", 4, ["unknown subdivision 'ZZ' of IT", "valid codes"], id="unknown_subdivision"),
    pytest.param(HEAD + "    timezones: UTC\n", 4, ["unknown key 'timezones'", "did you mean 'timezone'"], id="unknown_team_key"),
    pytest.param(HEAD + "    triage: {cooldown: 1h}\n", 4, ["unknown key 'cooldown'", "did you mean 'ack_cooldown'"], id="unknown_triage_key"),
    pytest.param(HEAD + "    triage: {ack_cooldown: 2 hours}\n", 4, ["'2 hours' is not a duration", "'2h'"], id="bad_duration"),
    pytest.param(HEAD + "    triage: {urgent: {patterns: [\"(?i)carta (rubata\"]}}\n", 4, ["not a valid regular expression"], id="bad_regex"),
    pytest.param(HEAD + "    triage: {reduced_staff: [zoe]}\n", 4, ["'zoe' is not under 'staff'"], id="reduced_staff_not_in_staff"),
    pytest.param(HEAD + "    triage: {templates: {it: {dm: \"Ciao {{ first_name \"}}}\n", 4, ["template error", "Jinja2"], id="bad_template"),
    pytest.param(HEAD + "    on_call:\n      rotation: {members: [ana], start: \"2026-11-02 09:00\", every: 30m}\n    staff: {ana: {}}\n", 5, ["'every' is '30m'", "12h, 1d or 1w"], id="rotation_every_in_minutes"),
    pytest.param(HEAD + "    overrides: [{from: \"24/12/2026 14:00\", to: \"2026-12-27 00:00\", mode: closed}]\n", 4, ["not a local date and time", "YYYY-MM-DD HH:MM"], id="bad_override_time"),
    pytest.param(HEAD + "    holidays: {ics: nowhere.ics}\n", 4, ["'nowhere.ics' not found", "relative to the coverage file"], id="missing_ics"),
    pytest.param("teams:\n  a: {timezone: UTC, accounts: [x]}\n  b: {timezone: UTC, accounts: [x]}\n", 3, ["account 'x' is already answered by team 'a' (line 2)"], id="account_in_two_teams"),
    pytest.param("teams:\n  t: {timezone: UTC\n", 3, ["not valid YAML", "fix the YAML syntax"], id="not_yaml"),
    pytest.param("- teams\n", 1, ["must be a mapping"], id="not_a_mapping"),
    pytest.param("teams:\n  t:\n    hours: {}\n", 3, ["'timezone' is missing", "add 'timezone:'"], id="missing_timezone"),
]


class TestValidation:
    @pytest.mark.parametrize(("text", "line", "fragments"), INVALID)
    def test_problem_names_line_and_fix(self, tmp_path, text, line, fragments):
        """Each fault is reported with its line, what is wrong and what to write."""
        problems = problems_of(text, base_dir=tmp_path)
        matching = [(at, message) for at, message in problems if all(f in message for f in fragments)]
        assert [line] == [at for at, _ in matching], problems

    def test_every_problem_listed_at_once(self):
        """A file with many faults lists every one of them, sorted by line."""
        problems = problems_of(
            """\
            teams:
              t:
                timezone: Mars/Olympus
                hours: {mon: ["09:00-19:00 sometimes"]}
                holidays: {country: XY}
            """
        )
        assert [3, 4, 5] == [line for line, _ in problems]

    def test_missing_file(self, tmp_path):
        """A file that does not exist is a problem, not a traceback."""
        with pytest.raises(CoverageInvalid) as caught:
            load_coverage(tmp_path / "nope.yaml")
        assert ["file not found"] == [p.message for p in caught.value.problems]


class TestLoad:
    def test_contract_example_loads(self):
        """The README's example (examples/coverage.yaml) loads as written."""
        coverage = load_coverage(ROOT / "examples" / "coverage.yaml")
        team = coverage.teams["care-it"]
        expected = ("Assistenza Italia", "Europe/Rome", "it", ("marta", "luca", "giulia"), "care-it")
        actual = (team.name, team.timezone.key, team.locale, team.on_call.rotation.members, coverage.team_for_account("acme_it_x").id)
        assert expected == actual

    def test_source_text_kept(self):
        """The snapshot keeps the text it was loaded from."""
        text = (ROOT / "examples" / "coverage.yaml").read_text()
        assert text == load_coverage_text(text).source_text

    def test_unknown_account_has_no_team(self):
        """An account no team answers maps to None."""
        assert load_coverage(ROOT / "examples" / "coverage.yaml").team_for_account("acme.fr.x") is None

    def test_yaml_1_1_scalars_read_as_written(self):
        """'country: NO' is Norway, not a boolean."""
        team = load_coverage_text("teams: {t: {timezone: Europe/Oslo, holidays: {country: NO}}}").teams["t"]
        assert "NO" == team.holidays.country

    def test_triage_options(self):
        """The optional triage mapping is read with its defaults filled in."""
        team = load_coverage_text(
            textwrap.dedent(
                """\
                teams:
                  t:
                    timezone: Europe/Rome
                    staff: {marta: {name: Marta}}
                    triage:
                      ack_cooldown: 6h
                      reply_within: {reduced: 30m}
                      reduced_staff: [marta]
                      urgent: {defaults: false, keywords: [guasto], patterns: ["(?i)carta\\\\s+rubata"]}
                      templates: {it: {dm: "Ciao {{ first_name }}"}}
                """
            )
        ).teams["t"]
        triage = team.triage
        expected = (timedelta(hours=6), timedelta(minutes=10), {"open": timedelta(hours=2), "reduced": timedelta(minutes=30)},
                    ("marta",), False, ("guasto",), ("(?i)carta\\s+rubata",), {"it": {"dm": "Ciao {{ first_name }}"}}, True)
        actual = (triage.ack_cooldown, triage.agent_active, dict(triage.reply_within), triage.reduced_staff,
                  triage.urgent_defaults, triage.urgent_keywords, triage.urgent_patterns, triage.templates, triage.public_reply)
        assert expected == actual

    def test_ics_days_are_holidays(self, tmp_path):
        """Days read from a holidays .ics file (relative to the file) count like 'extra'."""
        (tmp_path / "closures.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
            "BEGIN:VEVENT\r\nUID:strike@test\r\nDTSTAMP:20261101T000000Z\r\n"
            "DTSTART;VALUE=DATE:20261118\r\nDTEND;VALUE=DATE:20261119\r\nSUMMARY:Strike\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        (tmp_path / "c.yaml").write_text(HEAD + "    hours: {daily: [\"09:00-18:00 open\"]}\n    holidays: {ics: closures.ics}\n")
        team = load_coverage(tmp_path / "c.yaml").teams["t"]
        closed = team.at(datetime.fromisoformat("2026-11-18T12:00+01:00"))
        next_day = team.at(datetime.fromisoformat("2026-11-19T12:00+01:00"))
        assert ("closed", "holiday", "open") == (closed.mode, closed.source, next_day.mode)
