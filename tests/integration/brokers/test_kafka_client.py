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

import pytest
import trustme
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn

from brokers.client import (
    client_options,
)
from streams.settings import KafkaSecurity, Settings

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

