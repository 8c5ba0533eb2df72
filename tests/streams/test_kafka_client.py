"""Kafka client options: settings to aiokafka and Faust security, and TLS for real.

The TLS tests put a TLS-terminating proxy (a local asyncio server with a certificate
from a throwaway CA made by ``trustme``) in front of the embedded broker, and connect
with aiokafka built from :func:`client_options`: the client must complete the TLS
handshake, verify the CA and the host name, and speak Kafka through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest
import trustme
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
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


# --- TLS for real ----------------------------------------------------------------------


@dataclass
class TlsProxy:
    """A TLS server that forwards each connection to a plain Kafka broker.

    ``peers`` holds the client certificate subject of each completed handshake (None
    when the client sent none).
    """

    port: int = 0
    peers: list[Any] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_proxy(context: ssl.SSLContext, upstream: str) -> AsyncIterator[TlsProxy]:
    proxy = TlsProxy()
    host, _, port = upstream.rpartition(":")
    pumps: set[asyncio.Task[None]] = set()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("ssl_object").getpeercert()
        proxy.peers.append(None if not peer else dict(item[0] for item in peer["subject"]))
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        for task in (asyncio.create_task(pump(reader, up_writer)), asyncio.create_task(pump(up_reader, writer))):
            pumps.add(task)
            task.add_done_callback(pumps.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        for task in list(pumps):
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str, client_certs: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    if client_certs:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def write_ca(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path


def tls_settings(port: int, **security: Any) -> Settings:
    return Settings(broker_url=f"127.0.0.1:{port}", kafka=KafkaSecurity(security_protocol="SSL", **security))


async def metadata_brokers(settings: Settings) -> int:
    """How many brokers the cluster metadata, fetched with the settings' options, lists."""
    client = AIOKafkaClient(**client_options(settings), request_timeout_ms=10_000)
    try:
        await client.bootstrap()
        return len(client.cluster.brokers())
    finally:
        await client.close()


async def handshake(settings: Settings) -> None:
    """One aiokafka connection to the first broker with the settings' options (TLS only)."""
    options = client_options(settings)
    host, _, port = options["bootstrap_servers"][0].rpartition(":")
    conn = await create_conn(
        host, int(port), ssl_context=options["ssl_context"], security_protocol=options["security_protocol"]
    )
    conn.close()


@pytest.mark.broker
class TestTlsConnection:
    async def test_client_verifies_the_ca_and_speaks_kafka(self, broker, ca: trustme.CA, tmp_path: Path) -> None:
        """With the broker's CA in SSL_CAFILE, aiokafka completes the handshake and reads metadata."""
        async with tls_proxy(server_context(ca, "127.0.0.1", "localhost"), broker.bootstrap) as proxy:
            settings = tls_settings(proxy.port, ssl_cafile=write_ca(ca, tmp_path / "ca.pem"))
            brokers = await metadata_brokers(settings)
        assert (1, [None]) == (brokers, proxy.peers[:1])

    async def test_another_ca_is_refused(self, ca: trustme.CA, tmp_path: Path) -> None:
        """A broker certificate from a CA other than SSL_CAFILE fails verification."""
        async with tls_proxy(server_context(ca, "127.0.0.1"), "127.0.0.1:9") as proxy:
            settings = tls_settings(proxy.port, ssl_cafile=write_ca(trustme.CA(), tmp_path / "other.pem"))
            with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
                await handshake(settings)
        assert [] == proxy.peers

    async def test_wrong_host_name_is_refused(self, ca: trustme.CA, tmp_path: Path) -> None:
        """A certificate for another host name fails, even from the trusted CA."""
        async with tls_proxy(server_context(ca, "kafka.example"), "127.0.0.1:9") as proxy:
            settings = tls_settings(proxy.port, ssl_cafile=write_ca(ca, tmp_path / "ca.pem"))
            with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
                await handshake(settings)
        assert [] == proxy.peers

    async def test_client_certificate_for_mutual_tls(self, broker, ca: trustme.CA, tmp_path: Path) -> None:
        """SSL_CERTFILE and SSL_KEYFILE present the client certificate a mutual-TLS broker asks for."""
        client = ca.issue_cert("offhours-worker", common_name="offhours-worker")
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
        client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        context = server_context(ca, "127.0.0.1", client_certs=True)
        async with tls_proxy(context, broker.bootstrap) as proxy:
            settings = tls_settings(
                proxy.port,
                ssl_cafile=write_ca(ca, tmp_path / "ca.pem"),
                ssl_certfile=tmp_path / "client.crt",
                ssl_keyfile=tmp_path / "client.key",
            )
            brokers = await metadata_brokers(settings)
        assert (1, "offhours-worker") == (brokers, proxy.peers[0]["commonName"])
