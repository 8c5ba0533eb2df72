"""The composition root's checks that need no broker: the seed coverage and the worker's applied version."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from offhours.service import ServiceError, _applied, load_coverage_or_fail
from schedules import load_coverage_text
from streams.metrics import Metrics
from streams.settings import Settings

CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@t\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;VALUE=DATE:20260814\r\nDTEND;VALUE=DATE:20260815\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
COVERAGE = """\
teams:
  t:
    timezone: Europe/Rome
    hours: {{daily: ["09:00-18:00 open"]}}
    holidays: {{ics: {ics}}}
"""


def coverage_file(folder: Path, ics: str) -> Path:
    (folder / "sub").mkdir()
    (folder / "closures.ics").write_text(CALENDAR)
    (folder / "sub" / "closures.ics").write_text(CALENDAR)
    path = folder / "coverage.yaml"
    path.write_text(COVERAGE.format(ics=ics))
    return path


class TestSeedCoverage:
    def test_a_calendar_beside_the_file_is_read_through_the_topic_too(self, tmp_path: Path) -> None:
        """By default the config topic reads calendars from the coverage file's folder, by name."""
        coverage = load_coverage_or_fail(Settings(coverage_file=coverage_file(tmp_path, "closures.ics")))
        assert ["t"] == list(coverage.teams)

    def test_a_seed_the_topic_would_refuse_stops_the_start(self, tmp_path: Path) -> None:
        """A calendar in a subfolder loads from the file but not through the topic: the start stops, saying why."""
        with pytest.raises(ServiceError, match="must be the name of a file in the holiday calendars folder"):
            load_coverage_or_fail(Settings(coverage_file=coverage_file(tmp_path, "sub/closures.ics")))


class Holder:
    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse

    def swap(self, coverage: object) -> None:
        if self.refuse:
            raise ValueError("a template the worker refuses")


class TestAppliedVersion:
    @pytest.mark.parametrize(
        ("refuse", "expected"),
        [pytest.param(False, (7.0, 0.0), id="applied"), pytest.param(True, (3.0, 7.0), id="refused")],
    )
    def test_the_metrics_say_which_version_the_worker_decides_with(self, refuse: bool, expected: tuple[float, float]) -> None:
        """A swap the worker refuses leaves the applied version and shows the refused one."""
        metrics = Metrics()
        metrics.coverage_applied.set(3)
        pipeline = SimpleNamespace(coverage=Holder(refuse), metrics=metrics)
        store = SimpleNamespace(current=lambda: SimpleNamespace(version=7))
        swap = _applied(pipeline, store)
        with pytest.raises(ValueError) if refuse else contextlib.nullcontext():  # the store logs and records a refusal
            swap(load_coverage_text("teams: {t: {timezone: Europe/Rome}}"))
        sample = metrics.registry.get_sample_value
        assert expected == (sample("offhours_coverage_version_applied"), sample("offhours_coverage_version_refused"))


class TestConsoleSwitch:
    """``OFFHOURS_OPS__CONSOLE=false``: no console view (no topic feed) in this process, and a /console that says so."""

    @staticmethod
    def web(monkeypatch: pytest.MonkeyPatch, console: bool) -> tuple[object, list[object]]:
        from aiohttp.test_utils import make_mocked_request

        from console import web as console_web
        from offhours.service import build_web

        feeds: list[object] = []
        real_feed = console_web.TopicFeed
        monkeypatch.setattr(console_web, "TopicFeed", lambda *args: feeds.append(args) or real_feed(*args))
        settings = Settings(broker_url="kafka://127.0.0.1:9", ops={"console": console})
        root = build_web(settings, None, metrics=Metrics())
        return (root, make_mocked_request("GET", "/console/queue", app=root)), feeds

    async def test_off_serves_no_console_and_reads_no_topic(self, monkeypatch: pytest.MonkeyPatch) -> None:
        (root, request), feeds = self.web(monkeypatch, console=False)
        match = await root.router.resolve(request)  # type: ignore[attr-defined]
        answer = await match.handler(request)
        assert (404, [], True) == (answer.status, feeds, "OFFHOURS_OPS__CONSOLE=false" in answer.text)
        assert "api replicas" in answer.text

    async def test_on_by_default_with_its_feed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert Settings().ops.console
        _, feeds = self.web(monkeypatch, console=True)
        assert 1 == len(feeds)
