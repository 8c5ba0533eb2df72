"""What ``tests/unit/schedules/test_properties.py`` and ``tests/unit/triage/test_promise_honesty.py`` share (they were one module, tests/schedules/test_properties.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ZONES = ("Europe/Rome", "America/New_York", "Australia/Sydney")


MODES = ("open", "reduced", "closed")


FIRST_DAY = date(2026, 1, 1)


LAST_DAY = date(2027, 12, 31)


# Local days on which the clocks change in each zone during 2026-2027.
DST_DAYS = {
    "Europe/Rome": (date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)),
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7)),
    "Australia/Sydney": (date(2026, 4, 5), date(2026, 10, 4), date(2027, 4, 4), date(2027, 10, 3)),
}


# Ways to group the week into day keys: every day of the week exactly once.
DAY_LAYOUTS = (
    (("mon", "tue", "wed", "thu", "fri", "sat", "sun"), ((0,), (1,), (2,), (3,), (4,), (5,), (6,))),
    (("mon-fri", "sat", "sun"), ((0, 1, 2, 3, 4), (5,), (6,))),
    (("daily",), ((0, 1, 2, 3, 4, 5, 6),)),
    (("fri-mon", "tue,wed", "thu"), ((4, 5, 6, 0), (1, 2), (3,))),
)


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Generated:
    """A generated coverage file and what the properties need to know about it."""

    text: str
    zone: str


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[str, list[str]]:
    """Day keys with spans on a 15-minute grid: no overlaps, some crossing midnight."""
    keys, groups = draw(st.sampled_from(DAY_LAYOUTS))
    group_spans: list[list[tuple[int, int, str]]] = []
    for _ in groups:
        # An even number of distinct boundaries pairs up into spans; often the last
        # one is 24:00, so that the span may also cross midnight below.
        marks = sorted(draw(st.sets(st.integers(0, 95).map(lambda q: q * 15), max_size=6)))
        if len(marks) % 2:
            marks = marks[:-1]
        if marks and draw(st.booleans()):
            marks[-1] = 24 * 60
        modes = [draw(st.sampled_from(MODES)) for _ in range(len(marks) // 2)]
        group_spans.append(
            [(marks[2 * i], marks[2 * i + 1], modes[i]) for i in range(len(marks) // 2)]
        )
    group_of_day = {day: index for index, group in enumerate(groups) for day in group}

    def first_start(day: int) -> int:
        spans = group_spans[group_of_day[day]]
        return spans[0][0] if spans else 24 * 60

    # The last span of a group may cross midnight, ending no later than the first span
    # of every day that follows a day of the group.
    for index, group in enumerate(groups):
        spans = group_spans[index]
        if not spans or spans[-1][1] != 24 * 60 or not draw(st.booleans()):
            continue
        room = min(first_start((day + 1) % 7) for day in group)
        start, _, mode = spans[-1]
        room = min(room, start)
        tail = draw(st.integers(0, room // 15).map(lambda q: q * 15))
        spans[-1] = (start, 24 * 60 + tail, mode)

    hours: dict[str, list[str]] = {}
    for key, spans in zip(keys, group_spans, strict=True):
        texts = []
        for start, end, mode in spans:
            end_text = "24:00" if end == 24 * 60 else clock(end % (24 * 60))
            texts.append(f"{clock(start)}-{end_text} {mode}")
        if texts:
            hours[key] = texts
    return hours


def local_stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


@st.composite
def wall_clock(draw: st.DrawFn, zone: str) -> datetime:
    """A wall-clock minute on a 30-minute grid, often on a daylight-saving day."""
    if draw(st.booleans()):
        day = draw(st.sampled_from(DST_DAYS[zone]))
    else:
        day = draw(st.dates(FIRST_DAY, LAST_DAY))
    return datetime.combine(day, datetime.min.time()) + timedelta(minutes=30 * draw(st.integers(0, 47)))


@st.composite
def coverage_files(draw: st.DrawFn) -> Generated:
    """A valid coverage file with one team, as YAML text."""
    zone = draw(st.sampled_from(ZONES))
    lines = ["teams:", "  gen:", f"    timezone: {zone}", "    locale: en"]
    hours = weekly_hours_text(draw(weekly_hours()))
    lines += ["    hours:", *hours] if hours else ["    hours: {}"]

    extra = draw(st.lists(st.sampled_from(DST_DAYS[zone]) | st.dates(FIRST_DAY, LAST_DAY), max_size=4, unique=True))
    country = draw(st.sampled_from([None, None, "IT", "US", "AU"]))
    if extra or country:
        lines.append("    holidays:")
        if country:
            lines.append(f"      country: {country}")
        if extra:
            lines.append("      extra: [" + ", ".join(f'"{day.isoformat()}"' for day in extra) + "]")
        lines.append(f"      mode: {draw(st.sampled_from(MODES))}")

    # Non-overlapping overrides: sorted boundaries taken pairwise.
    boundaries = sorted(draw(st.lists(wall_clock(zone), max_size=4, unique=True)))
    if len(boundaries) % 2:
        boundaries = boundaries[:-1]
    if boundaries:
        lines.append("    overrides:")
        for index in range(0, len(boundaries), 2):
            mode = draw(st.sampled_from(MODES))
            lines.append(
                f'      - {{from: "{local_stamp(boundaries[index])}", '
                f'to: "{local_stamp(boundaries[index + 1])}", mode: {mode}, note: "override {index // 2}"}}'
            )

    members = draw(st.lists(st.sampled_from(["ada", "bo", "cy"]), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        every = draw(st.sampled_from(["12h", "1d", "2d", "1w"]))
        start = draw(wall_clock(zone))
        lines += [
            "    on_call:",
            f'      rotation: {{members: [{", ".join(members)}], start: "{local_stamp(start)}", every: {every}}}',
        ]
    lines.append("    staff:")
    lines += [f"      {member}: {{name: Member {member.title()}, notify: []}}" for member in members]
    return Generated(text="\n".join(lines) + "\n", zone=zone)


def weekly_hours_text(hours: dict[str, list[str]]) -> list[str]:
    return [f"      {key}: [" + ", ".join(f'"{span}"' for span in spans) + "]" for key, spans in hours.items()]


@st.composite
def instants(draw: st.DrawFn, zone: str) -> datetime:
    """An aware instant, to the second, often within a daylight-saving day."""
    tz = ZoneInfo(zone)
    if draw(st.booleans()):
        day = draw(st.sampled_from(DST_DAYS[zone]))
        start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
        return (start + timedelta(seconds=draw(st.integers(0, 26 * 3600)))).astimezone(tz)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    span = int((datetime.combine(LAST_DAY, datetime.min.time(), UTC) - start).total_seconds())
    return (start + timedelta(seconds=draw(st.integers(0, span)))).astimezone(tz)


PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

