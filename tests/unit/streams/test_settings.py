"""Settings: one object from the environment and flags, nothing else reads the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from offhours.cli import main
from streams.settings import KafkaSecurity, Settings, normalise_broker_url


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

    def test_instagram_page_id_must_be_the_linked_facebook_page(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An Instagram account whose page_id is its own Instagram id is refused at start, naming what to set."""
        monkeypatch.setenv("OFFHOURS_EDGE__ACCOUNTS", '{"ig:17841400000000001": "acme.it.instagram"}')
        monkeypatch.setenv("OFFHOURS_RESPONDERS__ACCOUNTS", '{"acme.it.instagram": {"page_id": "17841400000000001"}}')
        with pytest.raises(ValidationError, match=r"page_id is the Instagram account id 17841400000000001: set it to the id of the Facebook Page linked"):
            Settings()

    def test_instagram_page_id_of_the_linked_page_is_accepted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The linked Facebook Page's id is what the Instagram Send API is called on."""
        monkeypatch.setenv("OFFHOURS_EDGE__ACCOUNTS", '{"ig:17841400000000001": "acme.it.instagram"}')
        monkeypatch.setenv("OFFHOURS_RESPONDERS__ACCOUNTS", '{"acme.it.instagram": {"page_id": "104857600000001"}}')
        assert "104857600000001" == Settings().responders.accounts["acme.it.instagram"].page_id


class TestInvalidSettingsAtStart:
    def test_the_command_names_the_variable_and_exits_2(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad OFFHOURS_* value stops the command with the variable's name, no traceback and no echo of the value."""
        monkeypatch.setenv("OFFHOURS_PARTITIONS", "four-secret")
        assert 2 == main(["run"])
        err = capsys.readouterr().err
        assert "offhours run: invalid Settings:\n  OFFHOURS_PARTITIONS: Input should be a valid integer" in err
        assert "four-secret" not in err


PASSWORD = "s3cr3t-Pa55"


class TestKafkaSecurity:
    def test_environment_sets_tls_and_sasl(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OFFHOURS_KAFKA__* set the protocol, mechanism, login and TLS files."""
        for name, value in {
            "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_MECHANISM": "SCRAM-SHA-512",
            "SASL_USERNAME": "offhours",
            "SASL_PASSWORD": PASSWORD,
            "SSL_CAFILE": "/etc/offhours/kafka/ca.crt",
        }.items():
            monkeypatch.setenv(f"OFFHOURS_KAFKA__{name}", value)
        kafka = Settings().kafka
        assert ("SASL_SSL", "SCRAM-SHA-512", "offhours", PASSWORD, Path("/etc/offhours/kafka/ca.crt")) == (
            kafka.security_protocol,
            kafka.sasl_mechanism,
            kafka.sasl_username,
            kafka.sasl_password.get_secret_value(),
            kafka.ssl_cafile,
        )

    def test_default_is_plaintext(self) -> None:
        """Without configuration clients connect in PLAINTEXT, as to the embedded broker."""
        assert ("PLAINTEXT", False, False) == (
            KafkaSecurity().security_protocol, KafkaSecurity().tls, KafkaSecurity().sasl
        )

    def test_password_file_is_read_once(self, tmp_path: Path) -> None:
        """SASL_PASSWORD_FILE fills the password from a mounted file, stripped."""
        secret = tmp_path / "kafka-password"
        secret.write_text(f"{PASSWORD}\n")
        kafka = KafkaSecurity(security_protocol="SASL_SSL", sasl_username="u", sasl_password_file=secret)
        assert PASSWORD == kafka.sasl_password.get_secret_value()

    @pytest.mark.parametrize(
        ("security", "says"),
        [
            pytest.param(
                {"security_protocol": "SASL_SSL"},
                "SECURITY_PROTOCOL=SASL_SSL logs in with SASL: set OFFHOURS_KAFKA__SASL_USERNAME and "
                "OFFHOURS_KAFKA__SASL_PASSWORD",
                id="sasl_without_credentials",
            ),
            pytest.param(
                {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": ""},
                "set OFFHOURS_KAFKA__SASL_PASSWORD",
                id="sasl_with_empty_password",
            ),
            pytest.param(
                {"sasl_username": "u", "sasl_password": PASSWORD},
                "OFFHOURS_KAFKA__SASL_USERNAME and OFFHOURS_KAFKA__SASL_PASSWORD given but "
                "OFFHOURS_KAFKA__SECURITY_PROTOCOL is PLAINTEXT: set OFFHOURS_KAFKA__SECURITY_PROTOCOL=SASL_SSL",
                id="credentials_without_sasl",
            ),
            pytest.param(
                {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": PASSWORD,
                 "ssl_cafile": "/ca.pem"},
                "OFFHOURS_KAFKA__SSL_CAFILE given but OFFHOURS_KAFKA__SECURITY_PROTOCOL is SASL_PLAINTEXT: "
                "set OFFHOURS_KAFKA__SECURITY_PROTOCOL=SSL (or SASL_SSL) to use TLS, or remove it",
                id="tls_files_without_tls",
            ),
            pytest.param(
                {"security_protocol": "SSL", "ssl_keyfile": "/client.key"},
                "OFFHOURS_KAFKA__SSL_KEYFILE needs its certificate: set OFFHOURS_KAFKA__SSL_CERTFILE",
                id="key_without_certificate",
            ),
            pytest.param(
                {"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password_file": "/nonexistent/pw"},
                "OFFHOURS_KAFKA__SASL_PASSWORD_FILE: cannot read /nonexistent/pw (No such file or directory)",
                id="unreadable_password_file",
            ),
        ],
    )
    def test_inconsistent_settings_say_what_to_set(self, security: dict[str, str], says: str) -> None:
        """A combination that cannot work is rejected with the variables to set; no secret shown."""
        with pytest.raises(ValidationError) as caught:
            Settings(kafka=security)
        assert (True, False, False) == (
            says in str(caught.value), PASSWORD in str(caught.value), PASSWORD in repr(caught.value)
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            pytest.param("security_protocol", "TLS", id="unknown_protocol"),
            pytest.param("sasl_mechanism", "GSSAPI", id="unsupported_mechanism"),
        ],
    )
    def test_unknown_values_are_rejected(self, field: str, value: str) -> None:
        """Only the protocols and SASL mechanisms offhours supports are accepted."""
        with pytest.raises(ValidationError, match=field):
            KafkaSecurity(**{field: value})
