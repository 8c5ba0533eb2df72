"""``offhours replay`` through the command line, on the shipped examples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import EXAMPLE_COVERAGE, EXAMPLE_EVENTS, ROOT

pytestmark = pytest.mark.broker


def replay(*args: str | Path, broker_url: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    if broker_url is not None:
        env["OFFHOURS_BROKER_URL"] = broker_url
    return subprocess.run(
        [sys.executable, "-m", "offhours", "replay", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def expected_ids(path: Path) -> list[str | None]:
    """The id of each non-blank line, None for a line that is not a JSON object."""
    ids: list[str | None] = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            ids.append(orjson.loads(line).get("id"))
        except orjson.JSONDecodeError:
            ids.append(None)
    return ids


class TestReplay:
    def test_prints_one_decision_per_line_in_input_order(self, any_broker) -> None:
        """Every line of the examples gets its decision, in the order of the file, on Tansu and on Apache Kafka."""
        result = replay(EXAMPLE_COVERAGE, EXAMPLE_EVENTS, broker_url=any_broker.url)
        assert 0 == result.returncode, result.stderr
        decisions = [orjson.loads(line) for line in result.stdout.splitlines()]
        ids = expected_ids(EXAMPLE_EVENTS)
        assert [i or "" for i in ids] == [d["event_id"] or "" for d in decisions]
        malformed = [d for i, d in zip(ids, decisions, strict=True) if i is None]
        assert ["reject"] == [d["action"] for d in malformed]
        assert "not JSON" in malformed[0]["reason"]

    def test_examples_cover_every_mode_and_action(self, broker) -> None:
        """The shipped examples show open, reduced and closed, a page, a route, a duplicate."""
        result = replay(EXAMPLE_COVERAGE, EXAMPLE_EVENTS, broker_url=broker.url)
        decisions = [orjson.loads(line) for line in result.stdout.splitlines()]
        assert {"open", "reduced", "closed"} <= {d["mode"] for d in decisions}
        assert {"queue", "route", "page", "ignore", "reject"} == {d["action"] for d in decisions}
        assert "duplicate" in {d["ack_suppressed"] for d in decisions}

    def test_runs_on_the_embedded_broker_when_none_is_configured(self) -> None:
        """Without OFFHOURS_BROKER_URL the replay starts its own broker and finishes quickly."""
        result = replay(EXAMPLE_COVERAGE, EXAMPLE_EVENTS, timeout=60)
        assert 0 == result.returncode, result.stderr
        assert len(expected_ids(EXAMPLE_EVENTS)) == len(result.stdout.splitlines())

    def test_unreadable_events_file_exits_2(self, tmp_path: Path) -> None:
        """A missing events file is reported on stderr with exit code 2 and nothing on stdout."""
        result = replay(EXAMPLE_COVERAGE, tmp_path / "missing.jsonl")
        assert (2, "") == (result.returncode, result.stdout)
        assert "cannot read events file" in result.stderr

    def test_invalid_coverage_exits_2_with_the_problems(self, tmp_path: Path) -> None:
        """An invalid coverage file is reported with its problem list and exit code 2."""
        broken = tmp_path / "coverage.yaml"
        broken.write_text("teams:\n  care-it:\n    timezone: Mars/Olympus\n")
        result = replay(broken, EXAMPLE_EVENTS)
        assert (2, "") == (result.returncode, result.stdout)
        assert "invalid coverage file" in result.stderr
        assert "Mars/Olympus" in result.stderr
