"""Settings: one object from the environment and flags, nothing else reads the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings, normalise_broker_url


class TestSettings:
    def test_defaults_run_a_local_embedded_setup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without configuration the broker is embedded and topics have their contract names."""
        for name in [n for n in os.environ if n.startswith("OFFHOURS_")]:
            monkeypatch.delenv(name)
        settings = Settings()
        assert (True, "social.events", "offhours.decisions", 4, "memory://") == (
            settings.embedded,
            settings.events_topic,
            settings.decisions_topic,
            settings.partitions,
            settings.store,
        )

    def test_environment_uses_the_offhours_prefix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OFFHOURS_* variables set the fields, with __ between nested names."""
        monkeypatch.setenv("OFFHOURS_BROKER_URL", "kafka://kafka-1:9092")
        monkeypatch.setenv("OFFHOURS_PARTITIONS", "12")
        monkeypatch.setenv("OFFHOURS_COVERAGE_FILE", "/etc/offhours/coverage.yaml")
        monkeypatch.setenv("OFFHOURS_EDGE__META_APP_ID", "12345")
        settings = Settings()
        assert ("kafka://kafka-1:9092", 12, Path("/etc/offhours/coverage.yaml"), "12345") == (
            settings.broker_url,
            settings.partitions,
            settings.coverage_file,
            settings.edge.meta_app_id,
        )

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            pytest.param("kafka://k1:9092", "kafka://k1:9092", id="one_url"),
            pytest.param("k1:9092", "kafka://k1:9092", id="bare_host_port"),
            pytest.param("k1:9092, kafka://k2:9092", "kafka://k1:9092,kafka://k2:9092", id="comma_list"),
            pytest.param("  ", None, id="blank_means_embedded"),
        ],
    )
    def test_broker_url_is_normalised(self, given: str, expected: str | None) -> None:
        """Broker addresses become kafka:// URLs; a blank one means the embedded broker."""
        assert expected == normalise_broker_url(given)
        assert expected == Settings(broker_url=given).broker_url

    def test_bootstrap_servers_are_host_port(self) -> None:
        """aiokafka gets host:port strings."""
        settings = Settings(broker_url="kafka://k1:9092,kafka://k2:9093")
        assert ["k1:9092", "k2:9093"] == settings.bootstrap_servers

    def test_unknown_store_is_rejected(self) -> None:
        """Only the memory and RocksDB table stores are accepted."""
        with pytest.raises(ValidationError, match="memory:// or rocksdb://"):
            Settings(store="redis://x")

    def test_overrides_replace_only_given_fields(self) -> None:
        """A flag left unset (None) keeps the environment's value; a set one wins."""
        settings = Settings(web_port=9000, app_id="a")
        changed = settings.with_overrides(web_port=None, app_id="b", broker_url="k9:1")
        assert (9000, "b", "kafka://k9:1") == (changed.web_port, changed.app_id, changed.broker_url)
