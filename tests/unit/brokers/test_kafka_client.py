"""Kafka client options: settings to aiokafka and Faust security, and TLS for real.

The TLS tests put a TLS-terminating proxy (a local asyncio server with a certificate
from a throwaway CA made by ``trustme``) in front of the embedded broker, and connect
with aiokafka built from :func:`client_options`: the client must complete the TLS
handshake, verify the CA and the host name, and speak Kafka through it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from brokers.client import (
    ClientOptions,
    KafkaSecurityError,
    client_options,
    connection_options,
    faust_credentials,
)
from streams.settings import KafkaSecurity, Settings

PASSWORD = "s3cr3t-Pa55"


BROKERS = "kafka://k1:9093,kafka://k2:9093"


def settings_with(**security: Any) -> Settings:
    return Settings(broker_url=BROKERS, kafka=KafkaSecurity(**security))


SASL = {"sasl_username": "offhours", "sasl_password": PASSWORD}


PROTOCOL_CASES = [
    pytest.param({}, {"security_protocol": "PLAINTEXT"}, False, id="plaintext"),
    pytest.param({"security_protocol": "SSL"}, {"security_protocol": "SSL"}, True, id="ssl"),
    pytest.param(
        {"security_protocol": "SASL_PLAINTEXT", **SASL},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
         "sasl_plain_username": "offhours", "sasl_plain_password": PASSWORD},
        False,
        id="sasl_plaintext_plain",
    ),
    pytest.param(
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", **SASL},
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
         "sasl_plain_username": "offhours", "sasl_plain_password": PASSWORD},
        True,
        id="sasl_ssl_scram_sha_256",
    ),
    pytest.param(
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", **SASL},
        {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
         "sasl_plain_username": "offhours", "sasl_plain_password": PASSWORD},
        True,
        id="sasl_ssl_scram_sha_512",
    ),
]


def without_context(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != "ssl_context"}


class TestClientOptions:
    @pytest.mark.parametrize(("security", "expected", "tls"), PROTOCOL_CASES)
    def test_settings_become_aiokafka_options(self, security: dict[str, Any], expected: dict[str, Any], tls: bool) -> None:
        """Each protocol and mechanism gives the brokers and exactly its security options."""
        options = client_options(settings_with(**security))
        assert {"bootstrap_servers": ["k1:9093", "k2:9093"], **expected} == without_context(options)
        assert tls == isinstance(options.get("ssl_context"), ssl.SSLContext)

    @pytest.mark.parametrize(("security", "expected", "tls"), PROTOCOL_CASES)
    def test_tls_context_verifies_the_broker(self, security: dict[str, Any], expected: dict[str, Any], tls: bool) -> None:
        """A TLS context requires the broker's certificate and checks its host name."""
        context = client_options(settings_with(**security)).get("ssl_context")
        actual = None if context is None else (context.verify_mode, context.check_hostname)
        assert ((ssl.CERT_REQUIRED, True) if tls else None) == actual

    @pytest.mark.parametrize(("security", "expected", "tls"), PROTOCOL_CASES)
    def test_faust_gets_the_same_security(self, security: dict[str, Any], expected: dict[str, Any], tls: bool) -> None:
        """Faust's own translation of broker_credentials equals the options of the plain clients."""
        settings = settings_with(**security)
        faust_auth = credentials_to_aiokafka_auth(faust_credentials(settings))
        plain = without_context(client_options(settings))
        del plain["bootstrap_servers"]
        assert (plain, tls) == (without_context(faust_auth), faust_auth.get("ssl_context") is not None)

    @pytest.mark.parametrize(
        ("security", "kind"),
        [
            pytest.param({}, type(None), id="plaintext_none"),
            pytest.param({"security_protocol": "SSL"}, faust.SSLCredentials, id="ssl"),
            pytest.param({"security_protocol": "SASL_PLAINTEXT", **SASL}, faust.SASLCredentials, id="sasl"),
        ],
    )
    def test_faust_credentials_kind(self, security: dict[str, Any], kind: type) -> None:
        """PLAINTEXT gives no credentials (Faust's default); SSL and SASL their Faust types."""
        assert kind is type(faust_credentials(settings_with(**security)))

    def test_password_never_printed(self) -> None:
        """Settings, options and Faust credentials print the SASL password masked, if at all."""
        settings = settings_with(security_protocol="SASL_SSL", **SASL)
        texts = [repr(settings), str(settings), repr(settings.kafka), repr(client_options(settings)),
                 str(client_options(settings)), repr(faust_credentials(settings))]
        assert [] == [text for text in texts if PASSWORD in text]
        assert "**********" in repr(client_options(settings))

    def test_bare_brokers_are_a_plaintext_connection(self) -> None:
        """Components given host:port strings connect as before; given options, use them."""
        options = client_options(settings_with(security_protocol="SASL_PLAINTEXT", **SASL))
        assert ({"bootstrap_servers": "k1:9092"}, options) == (
            connection_options("k1:9092"), connection_options(options)
        )
        assert isinstance(connection_options(options), ClientOptions)

    def test_unreadable_ca_file_names_the_setting(self, tmp_path: Path) -> None:
        """A missing CA file is an error naming the variable and path, raised before connecting."""
        missing = tmp_path / "nope" / "ca.pem"
        settings = settings_with(security_protocol="SASL_SSL", ssl_cafile=missing, **SASL)
        with pytest.raises(KafkaSecurityError) as caught:
            client_options(settings)
        assert f"OFFHOURS_KAFKA__SSL_CAFILE={missing}" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    def test_app_passes_the_credentials_to_faust(self) -> None:
        """The Faust app's options carry broker_credentials from the same settings."""
        from streams.app import faust_options

        settings = settings_with(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", **SASL)
        credentials = faust_options(settings)["broker_credentials"]
        assert ("SASL_SSL", "SCRAM-SHA-512", "offhours") == (
            credentials.protocol.value, credentials.mechanism.value, credentials.username
        )

