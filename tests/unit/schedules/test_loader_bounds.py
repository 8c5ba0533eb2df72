"""What a coverage text may ask of the loader: size, nesting, aliases, teams, calendars, templates, notify URIs."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schedules import (
    CoverageInvalid,
    Team,
    TriageOptions,
    load_coverage,
    load_coverage_text,
)
from schedules.holiday import DirectoryCalendars, NoCalendars
from schedules.loader import NOTIFY_SCHEMES, LoadLimits
from schedules.model import WeeklyHours

HEAD = "teams:\n  t:\n    timezone: Europe/Rome\n"
CANARY = "CANARY_VALUE=do-not-print-me"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20260814\r\nDTEND;VALUE=DATE:20260815\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)

# 410 bytes that expand to 9^7 values when walked: the "billion laughs" of YAML.
ALIAS_BOMB = """\
teams:
  t:
    timezone: Europe/Rome
    triage:
      urgent: {keywords: &a [x,x,x,x,x,x,x,x,x]}
      reduced_staff: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
      ack_cooldown: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
      agent_active: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
      reply_within: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
      public_reply: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
      ack_when_open: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def problems(text: str, **options) -> list[tuple[int | None, str]]:
    """The (line, message; hint) of each problem of ``text``."""
    with pytest.raises(CoverageInvalid) as refused:
        load_coverage_text(text, filename="c.yaml", **options)
    return [(p.line, f"{p.message}; {p.hint}") for p in refused.value.problems]


class TestBounds:
    @pytest.mark.parametrize(
        ("text", "limits", "line", "fragment"),
        [
            pytest.param(ALIAS_BOMB, LoadLimits(), 6, "anchors and aliases expand to more than 250000 values", id="alias_bomb"),
            pytest.param("teams: &t {x: *t}\n", LoadLimits(), 1, "an alias refers to a collection that contains it", id="alias_cycle"),
            pytest.param(HEAD + "    accounts: " + "[" * 200 + "]" * 200 + "\n", LoadLimits(), 4, "nested deeper than 32 levels", id="deep_nesting"),
            pytest.param("teams: {a: {timezone: UTC}, b: {timezone: UTC}, c: {timezone: UTC}}\n", LoadLimits(max_teams=2), 1, "'teams' lists 3 teams; at most 2", id="too_many_teams"),
            pytest.param(HEAD + "    name: " + "x" * 2000 + "\n", LoadLimits(max_bytes=1024), None, "at most 1024 bytes is accepted", id="too_large"),
        ],
    )
    def test_refused_with_one_problem(self, text: str, limits: LoadLimits, line: int | None, fragment: str) -> None:
        """A text beyond a bound is refused with one problem at its line, before anything is walked."""
        found = problems(text, limits=limits)
        assert (1, line, True) == (len(found), found[0][0], fragment in found[0][1])

    def test_alias_bomb_is_refused_fast(self) -> None:
        """The 410-byte alias bomb is refused in well under a second (before: 3.9 s, 595 MiB, a 310 MB problem text)."""
        started = time.perf_counter()
        found = problems(ALIAS_BOMB)
        elapsed = time.perf_counter() - started
        assert (1, True) == (len(found), elapsed < 0.5)

    def test_small_aliases_are_fine(self) -> None:
        """Anchors reused a few times (the same hours for two teams) load as written."""
        text = 'teams:\n  a: {timezone: UTC, hours: &h {daily: ["09:00-17:00 open"]}}\n  b: {timezone: UTC, hours: *h}\n'
        coverage = load_coverage_text(text)
        assert ["a", "b"] == list(coverage.teams)

    def test_problem_count_is_capped(self) -> None:
        """Thousands of faults are reported as the first ones and a count of the rest."""
        text = HEAD + "    accounts: [" + ", ".join(["[x]"] * 500) + "]\n"
        found = problems(text, limits=LoadLimits(max_problems=10))
        assert (11, "and 490 more problem(s)") == (len(found), found[-1][1].split(";")[0])

    def test_a_list_where_a_boolean_belongs_is_not_printed(self) -> None:
        """A problem names what is wrong without printing the (possibly huge) value."""
        found = problems(HEAD + "    triage: {ack_when_open: [" + ", ".join(["long-value"] * 100) + "]}\n")
        assert [(4, "team 't', 'triage', 'ack_when_open' must be true or false; write true or false")] == found


@pytest.fixture
def calendars(tmp_path: Path) -> Path:
    """A holiday calendars folder beside a folder of host files it must not reach."""
    folder = tmp_path / "calendars"
    folder.mkdir()
    (folder / "closures.ics").write_text(CALENDAR)
    (folder / "notes.ics").write_text(CANARY + "\n")
    (folder / "big.ics").write_text(CALENDAR + "X" * 2048)
    (folder / "sub").mkdir()
    (folder / "sub" / "inner.ics").write_text(CALENDAR)
    (folder / "data").mkdir()
    (folder / "data" / "real.ics").write_text(CALENDAR)
    (folder / "linked.ics").symlink_to(folder / "data" / "real.ics")
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.ics").write_text(CALENDAR)
    (folder / "escape.ics").symlink_to(host / "secret.ics")
    os.mkfifo(folder / "pipe.ics")
    return folder


def _with_ics(name: str) -> str:
    return HEAD + f"    holidays: {{ics: '{name}'}}\n"


UNUSABLE = (
    "team 't', 'holidays': holiday calendar '{name}' cannot be used: it must be a readable iCalendar (.ics) file "
    "of at most 1024 bytes in the holiday calendars folder; "
    "put the .ics file in the holiday calendars folder and write its name alone, e.g. ics: closures.ics"
)
NOT_A_NAME = (
    "team 't', 'holidays': holiday calendar: 'ics' must be the name of a file in the holiday calendars folder, "
    "without a folder (no '/', no '..'); "
    "put the .ics file in the holiday calendars folder and write its name alone, e.g. ics: closures.ics"
)


class TestCalendarsFromOneFolder:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("missing.ics", UNUSABLE, id="missing"),
            pytest.param("sub", UNUSABLE, id="a_folder"),
            pytest.param("pipe.ics", UNUSABLE, id="fifo"),
            pytest.param("big.ics", UNUSABLE, id="too_large"),
            pytest.param("notes.ics", UNUSABLE, id="not_icalendar"),
            pytest.param("escape.ics", UNUSABLE, id="symlink_out_of_the_folder"),
            pytest.param("/proc/self/environ", NOT_A_NAME, id="absolute_path"),
            pytest.param("../host/secret.ics", NOT_A_NAME, id="dot_dot"),
            pytest.param("sub/inner.ics", NOT_A_NAME, id="subfolder"),
            pytest.param("..", NOT_A_NAME, id="parent"),
        ],
    )
    def test_every_fault_gets_the_same_answer(self, calendars: Path, name: str, expected: str) -> None:
        """Missing, a folder, a FIFO, too large, invalid, or outside: one answer, no path, no content."""
        found = problems(_with_ics(name), calendars=DirectoryCalendars(calendars, max_bytes=1024))
        assert [(4, expected.format(name=name))] == found

    def test_unreadable_file_gets_the_same_answer(self, calendars: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file the service may not read answers like a missing one."""
        (calendars / "locked.ics").write_text(CALENDAR)
        real_open = os.open

        def refused(path, flags, *args):  # what a service not running as root meets on a mode-000 file
            if str(path).endswith("locked.ics"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", refused)
        found = problems(_with_ics("locked.ics"), calendars=DirectoryCalendars(calendars, max_bytes=1024))
        assert [(4, UNUSABLE.format(name="locked.ics"))] == found

    @pytest.mark.parametrize("name", [pytest.param("closures.ics", id="plain_file"), pytest.param("linked.ics", id="symlink_inside")])
    def test_a_calendar_of_the_folder_closes_its_days(self, calendars: Path, name: str) -> None:
        """A plain name of a regular file in the folder (or a link to one inside it, as Kubernetes mounts) is read."""
        coverage = load_coverage_text(_with_ics(name), calendars=DirectoryCalendars(calendars, max_bytes=1024))
        assert "holiday" == coverage.teams["t"].holidays.name_of(date(2026, 8, 14))

    def test_without_a_folder_ics_is_refused_saying_how_to_enable_it(self, calendars: Path) -> None:
        """With no folder configured, 'ics' is refused whatever it names, with the hint given."""
        found = problems(_with_ics(str(calendars / "closures.ics")), calendars=NoCalendars(hint="set THE_SETTING"))
        assert [(4, "team 't', 'holidays': holiday calendar cannot be used: .ics files are not enabled for "
                 "coverage sent through the operations API; set THE_SETTING")] == found


class TestOperatorsOwnFile:
    @pytest.mark.parametrize(
        ("content", "fragment"),
        [
            pytest.param(CANARY + "\n", "not a valid iCalendar file", id="not_icalendar"),
            pytest.param("BEGIN:VCALENDAR\r\nX-SECRET:" + CANARY + "\r\nBEGIN:VEVENT\r\nDTSTART:2026\r\nRRULE:FREQ=" + CANARY + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                         "cannot", id="bad_rule"),
        ],
    )
    def test_check_never_prints_the_calendar(self, tmp_path: Path, content: str, fragment: str) -> None:
        """`coverage check` of the operator's file names the calendar and the fault, never its content or the parser's words."""
        (tmp_path / "c.ics").write_text(content)
        (tmp_path / "coverage.yaml").write_text(_with_ics("c.ics"))
        with pytest.raises(CoverageInvalid) as refused:
            load_coverage(tmp_path / "coverage.yaml")
        text = str(refused.value)
        assert (True, False) == (fragment in text, "CANARY" in text)

    def test_a_fifo_does_not_stall_the_check(self, tmp_path: Path) -> None:
        """A FIFO named as a calendar is refused at once (it was opened and waited on)."""
        os.mkfifo(tmp_path / "pipe.ics")
        (tmp_path / "coverage.yaml").write_text(_with_ics("pipe.ics"))
        with pytest.raises(CoverageInvalid) as refused:
            load_coverage(tmp_path / "coverage.yaml")
        assert "not a regular file" in str(refused.value)


def _with_template(kind: str, source: str) -> str:
    quoted = source.replace("'", "''")
    return HEAD + f"    name: Desk\n    triage:\n      templates:\n        it:\n          {kind}: '{quoted}'\n"


TEMPLATES = [
    # (kind, source, fragment of the problem) - None: accepted
    pytest.param("dm", "Ciao {{ first_name }}, {{ team_name }} risponde entro {{ reply_within_minutes }} minuti.", None, id="plain_variables"),
    pytest.param("dm", "{% if mode == 'closed' %}Chiusi{% elif paged %}Urgente{% else %}{{ staff_name|default('Il team') }}{% endif %}", None, id="if_and_filters"),
    pytest.param("dm", "{{ order_number }}", "unknown variable 'order_number'", id="unknown_variable"),
    pytest.param("public", "Ciao {{ first_name }}!", "a public template cannot use 'first_name'", id="public_has_no_customer_name"),
    pytest.param("dm", "x" * 700, "renders 700 characters; keep it within 640", id="too_long"),
    pytest.param("dm", "{{ ''.__class__.__mro__ }}", "do not allow attribute access", id="sandbox_dunder"),
    pytest.param("dm", "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}", "do not allow loops", id="loop_that_runs_for_hours"),
    pytest.param("dm", "{{ 9**9**9**9 }}", "do not allow powers", id="power_that_never_ends"),
    pytest.param("dm", "{{ ('x' * 999999999)|length }}", "'*' works on numbers only", id="string_that_explodes"),
    pytest.param("dm", "{{ '%999999999s'|format(1) }}", "do not allow the filter 'format'", id="format_width_bomb"),
    pytest.param("dm", "{{ mode|center(999999999) }}", "do not allow the filter 'center'", id="center_bomb"),
    pytest.param("dm", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "acknowledgment templates do not allow", id="recursive_macro"),
    pytest.param("dm", "{{ 1 // 0 }}", "ZeroDivisionError", id="division_by_zero"),
    pytest.param("dm", "{{ x " + "~ x " * 2000 + "}}", "at most 4000 are accepted", id="source_too_long"),
]


WORKER_CASES = {"plain_variables", "if_and_filters", "unknown_variable", "public_has_no_customer_name", "too_long", "sandbox_dunder"}


class TestTemplates:
    @pytest.mark.parametrize(("kind", "source", "fragment"), TEMPLATES)
    def test_checked_when_the_coverage_loads(self, kind: str, source: str, fragment: str | None) -> None:
        """A template the worker would refuse, or whose render loops or explodes, is refused at its line."""
        try:
            load_coverage_text(_with_template(kind, source))
            found = None
        except CoverageInvalid as refused:
            found = [(p.line, fragment in p.message) for p in refused.problems]
        assert (None if fragment is None else [(8, True)]) == found

    @pytest.mark.parametrize(("kind", "source", "fragment"), [p for p in TEMPLATES if p.id in WORKER_CASES])
    def test_the_worker_agrees(self, kind: str, source: str, fragment: str | None) -> None:
        """What the loader accepts the worker compiles; what the worker refuses the loader refuses."""
        from triage.acks import AckTemplateError, AckWriter

        team = Team("t", name="Desk", timezone=ZoneInfo("Europe/Rome"), hours=WeeklyHours(((),) * 7),
                    triage=TriageOptions(templates={"it": {kind: source}}))
        try:
            AckWriter(team)
            worker = "accepted"
        except AckTemplateError:
            worker = "refused"
        assert ("accepted" if fragment is None else "refused") == worker


class TestUrgentPatterns:
    @pytest.mark.parametrize(
        ("pattern", "refused"),
        [
            pytest.param("(?i)carta\\s+(clonata|rubata)", False, id="plain_alternatives"),
            pytest.param("(a+)+$", True, id="nested_repetition"),
            pytest.param("(\\w+)\\s\\1", True, id="backreference"),
        ],
    )
    def test_the_workers_rule_refuses_at_load(self, pattern: str, refused: bool) -> None:
        """The loader refuses exactly the patterns the worker's urgency rules refuse."""
        text = HEAD + f"    triage: {{urgent: {{patterns: ['{pattern}']}}}}\n"
        try:
            load_coverage_text(text)
            outcome = False
        except CoverageInvalid as invalid:
            outcome = [p.line for p in invalid.problems] == [4]
        assert refused == outcome


class TestNotify:
    @pytest.mark.parametrize(
        ("uri", "fragment"),
        [
            pytest.param("sms:+390612345", "'sms:' is not a notify scheme", id="unknown_scheme"),
            pytest.param("slack:hooks.slack.com/services/T/B/x", "a 'slack:' target must be an http(s) URL", id="slack_not_a_url"),
            pytest.param("mailto:", "'mailto:' names no target", id="empty_target"),
            pytest.param("marta@example.com", "the target has no kind", id="no_scheme"),
        ],
    )
    def test_a_uri_no_notifier_serves_is_refused(self, uri: str, fragment: str) -> None:
        """A staff notify URI must have a scheme some notifier serves, with a target of its shape."""
        found = problems(HEAD + f"    staff: {{marta: {{notify: ['{uri}']}}}}\n")
        assert [(4, True)] == [(line, fragment in text) for line, text in found]

    def test_schemes_are_the_notifiers(self) -> None:
        """The loader's notify schemes are exactly the schemes the responders have a notifier for."""
        from responders.registry import STAFF_NOTIFIERS

        assert sorted(STAFF_NOTIFIERS) == sorted(NOTIFY_SCHEMES)
