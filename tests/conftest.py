"""Fixtures shared by every test tier.

- The local time zone of the test process is not UTC (``Asia/Kolkata``, +05:30), so a
  result that depends on the machine's zone shows up as a failure.
- ``broker``: one real embedded Tansu broker for the whole session. Tests that use it
  take unique topic names and app ids (``unique_name``, ``stream_settings``), so they
  never see each other's records.
- ``kafka_broker``: one real Apache Kafka node (KRaft, :mod:`brokers.apache`) for
  the whole session, started on first use. It needs Java 17 and Maven; without them the
  tests that use it fail saying what to install (they are never skipped).
- ``any_broker``: each test that takes it runs twice, on Tansu and on Apache Kafka, with
  the same assertions (ids ``[tansu]`` and ``[kafka]``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.apache import KafkaServer
from brokers.tansu import EmbeddedBroker
from edge.ops_config import OpsSettings
from responders.config import ResponderSettings
from streams.settings import Settings

TEST_ZONE = "Asia/Kolkata"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_COVERAGE = ROOT / "examples" / "coverage.yaml"
EXAMPLE_EVENTS = ROOT / "examples" / "events.jsonl"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["TZ"] = TEST_ZONE
    time.tzset()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The session's embedded broker (started once, stopped at the end)."""
    with EmbeddedBroker() as embedded:
        yield embedded


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaServer]:
    """The session's Apache Kafka node (started on first use, stopped at the end)."""
    with KafkaServer() as server:
        yield server


BROKERS = ("tansu", "kafka")


@pytest.fixture(params=BROKERS)
def any_broker(request: pytest.FixtureRequest) -> EmbeddedBroker | KafkaServer:
    """The session's Tansu broker, then its Apache Kafka node: the test runs on both."""
    return request.getfixturevalue("broker" if request.param == "tansu" else "kafka_broker")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: the test's name plus a random suffix."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"


def settings_for(broker: EmbeddedBroker | KafkaServer, name: str, data_dir: Path, **changes: object) -> Settings:
    """Settings on ``broker`` whose app id and topics all carry ``name``.

    On the embedded broker (Tansu) records go one per produce batch, as the service does
    there; on Apache Kafka the settings are a Kafka operator's.
    """
    base = Settings(
        broker_url=broker.url,
        coverage_file=EXAMPLE_COVERAGE,
        app_id=f"t-{name}",
        events_topic=f"{name}.events",
        decisions_topic=f"{name}.decisions",
        acks_topic=f"{name}.acks",
        routes_topic=f"{name}.routes",
        dead_letter_topic=f"{name}.deadletter",
        config_topic=f"{name}.config",
        deliveries_topic=f"{name}.deliveries",
        ops=OpsSettings(actions_topic=f"{name}.actions", audit_topic=f"{name}.audit"),
        responders=ResponderSettings(deliver=False),
        one_record_batches=isinstance(broker, EmbeddedBroker),
        session_timeout=2.0,
        reconcile_interval=1.0,
        data_dir=data_dir,
    )
    return base.with_overrides(**changes)


@pytest.fixture
def stream_settings(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Settings:
    """Settings for one test: the session broker, its own app id and topics."""
    return settings_for(broker, unique_name, tmp_path / "data")


@pytest.fixture
def any_stream_settings(any_broker: EmbeddedBroker | KafkaServer, unique_name: str, tmp_path: Path) -> Settings:
    """:func:`stream_settings` on Tansu, then on Apache Kafka: the test runs on both."""
    return settings_for(any_broker, unique_name, tmp_path / "data")
