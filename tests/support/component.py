"""Settings of the component tier's apps: never started, no broker (tests/component/conftest.py says why)."""

from __future__ import annotations

from pathlib import Path

from responders.config import ResponderSettings
from streams.settings import Settings
from tests.conftest import EXAMPLE_COVERAGE

NO_BROKER = "kafka://127.0.0.1:1"
"""The app must name a broker; nothing in this tier connects to it."""



def component_settings(data_dir: Path, responders: ResponderSettings | None = None) -> Settings:
    """Settings of an app that is never started: no broker, its own data directory."""
    return Settings(
        broker_url=NO_BROKER,
        coverage_file=EXAMPLE_COVERAGE,
        app_id="component",
        responders=responders or ResponderSettings(deliver=False),
        data_dir=data_dir,
    )
