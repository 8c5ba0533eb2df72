"""How every Kafka client of the service connects: brokers, TLS and SASL, from the settings.

One translation of :class:`streams.settings.KafkaSecurity` for the two client stacks:

- :func:`client_options`: the keyword arguments for every ``AIOKafkaProducer``,
  ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient`` the service makes itself (ingest,
  actions, configuration store, reconciliation, replay, ``offhours decisions``, topic
  creation): ``bootstrap_servers`` and the security options.
- :func:`faust_credentials`: the same for Faust's ``broker_credentials`` (its consumers,
  producers and admin client), None for ``PLAINTEXT``.

TLS always verifies the broker's certificate and host name (aiokafka's
:func:`~aiokafka.helpers.create_ssl_context`), against ``ssl_cafile`` or the system's
CAs. Each call builds a fresh :class:`ssl.SSLContext`, reading the files anew, so a
rotated certificate is picked up by the next client made.

The options hold the SASL password in clear (aiokafka takes a ``str``); the mapping
returned prints it as ``**********``. Errors name the setting and the path, never a
secret.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

    from streams.settings import KafkaSecurity, Settings

KafkaConnection = str | Sequence[str] | Mapping[str, Any]
"""What a component that makes its own Kafka clients is given: broker addresses
(``"host:port"`` or a list, PLAINTEXT) or the full :func:`client_options`."""

REDACTED = "**********"
SECRET_OPTIONS = frozenset({"sasl_plain_password"})


class KafkaSecurityError(ValueError):
    """The TLS files of the settings cannot be used; the message names the setting and path."""


class ClientOptions(dict[str, Any]):
    """aiokafka keyword arguments (``AIOKafkaProducer(**options)``) that never print a password."""

    def __repr__(self) -> str:
        shown = {key: REDACTED if key in SECRET_OPTIONS and value else value for key, value in self.items()}
        return f"ClientOptions({shown!r})"

    __str__ = __repr__


def client_options(settings: Settings) -> ClientOptions:
    """The aiokafka keyword arguments for ``settings``: brokers and security.

    Always ``bootstrap_servers`` and ``security_protocol``; with TLS an ``ssl_context``;
    with SASL ``sasl_mechanism``, ``sasl_plain_username`` and ``sasl_plain_password``.
    Raises :class:`KafkaSecurityError` when a TLS file cannot be read or is not PEM,
    and ``ValueError`` when no broker is configured.
    """
    security = settings.kafka
    options = ClientOptions(
        bootstrap_servers=settings.bootstrap_servers, security_protocol=security.security_protocol
    )
    if security.tls:
        options["ssl_context"] = ssl_context(security)
    if security.sasl:
        assert security.sasl_password is not None  # KafkaSecurity validates the pair
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for ``settings``; None for ``PLAINTEXT``.

    ``SSL`` gives :class:`faust.SSLCredentials`; ``SASL_PLAINTEXT`` and ``SASL_SSL`` give
    :class:`faust.SASLCredentials` (Faust picks ``SASL_SSL`` when it has a context).
    """
    # Imported here: the edge uses this module and must not load Faust.
    import faust

    security = settings.kafka
    if security.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(security) if security.tls else None
    if not security.sasl:
        return faust.SSLCredentials(context)
    assert security.sasl_password is not None  # KafkaSecurity validates the pair
    return faust.SASLCredentials(
        username=security.sasl_username,
        password=security.sasl_password.get_secret_value(),
        ssl_context=context,
        mechanism=security.sasl_mechanism,
    )


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context that verifies the broker (CA file or system CAs, host name)."""
    try:
        return create_ssl_context(
            cafile=security.ssl_cafile, certfile=security.ssl_certfile, keyfile=security.ssl_keyfile
        )
    except (OSError, ssl.SSLError) as exc:
        files = {
            "SSL_CAFILE": security.ssl_cafile,
            "SSL_CERTFILE": security.ssl_certfile,
            "SSL_KEYFILE": security.ssl_keyfile,
        }
        named = ", ".join(f"OFFHOURS_KAFKA__{name}={path}" for name, path in files.items() if path is not None)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise KafkaSecurityError(
            f"cannot build the Kafka TLS context from {named or 'the system CAs'}: {reason}; "
            "check that each file exists, is readable and is PEM (the key unencrypted)"
        ) from exc


def connection_options(connection: KafkaConnection) -> ClientOptions:
    """aiokafka keyword arguments for ``connection``: :func:`client_options` as given, or
    bare broker addresses as a PLAINTEXT connection."""
    if isinstance(connection, Mapping):
        return ClientOptions(connection)
    return ClientOptions(bootstrap_servers=connection)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2) gives ``key``.

    Every producer of the pipeline's inputs (ingest, the action sink, Faust) keys by
    conversation with that partitioner, so this is where a conversation's rows live.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
