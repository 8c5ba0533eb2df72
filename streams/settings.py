"""The one settings object of the service.

:class:`Settings` is built once, at the entry point, from the environment
(``OFFHOURS_`` prefix, ``__`` between nested names, e.g.
``OFFHOURS_RESPONDERS__SMTP_HOST``) and the command-line flags, then passed down.
Nothing else in the code base reads the environment.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge.config import EdgeSettings
from edge.ops_config import OpsSettings
from responders.config import ResponderSettings

MIN_RETENTION = timedelta(days=1)
"""``retention`` must be longer than this (the platforms redeliver webhooks for ~36 h)."""

KAFKA_ENV = "OFFHOURS_KAFKA__"
"""The environment prefix of :class:`KafkaSecurity`, for errors that say what to set."""


class KafkaSecurity(BaseModel):
    """How every Kafka client of the service connects: TLS and SASL (``OFFHOURS_KAFKA__*``).

    ``security_protocol`` is Kafka's: ``PLAINTEXT`` (the default; the embedded broker and
    a private network), ``SSL`` (TLS, optionally with a client certificate),
    ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL login, over TLS for the latter).
    ``sasl_mechanism`` is ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``; SASL needs
    ``sasl_username`` and ``sasl_password`` (or ``sasl_password_file``, a mounted file
    read once when the settings are built). TLS verifies the broker against
    ``ssl_cafile`` (PEM; the system's CAs when unset) and its host name;
    ``ssl_certfile`` and ``ssl_keyfile`` (PEM) are the client certificate for mutual TLS.

    A combination that cannot be what was meant (credentials without a SASL protocol,
    TLS files without TLS, SASL without credentials, a key without a certificate) is an
    error that says which variables to set. The password is a :class:`SecretStr`: it
    prints as ``**********`` and no error text contains it.
    """

    model_config = {"frozen": True}

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @property
    def tls(self) -> bool:
        """True when the connection is encrypted (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        """True when the client logs in with SASL (``SASL_PLAINTEXT`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        protocol = f"{KAFKA_ENV}SECURITY_PROTOCOL"
        if self.sasl_password is None and self.sasl_password_file is not None:
            try:
                content = self.sasl_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"{KAFKA_ENV}SASL_PASSWORD_FILE: cannot read {self.sasl_password_file} ({exc.strerror})"
                ) from None
            object.__setattr__(self, "sasl_password", SecretStr(content))
        credentials = [
            f"{KAFKA_ENV}{name.upper()}"
            for name in ("sasl_username", "sasl_password")
            if getattr(self, name) is not None
        ]
        files = [
            f"{KAFKA_ENV}{name.upper()}"
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
            if getattr(self, name) is not None
        ]
        if self.sasl:
            missing = []
            if not self.sasl_username:
                missing.append(f"{KAFKA_ENV}SASL_USERNAME")
            if self.sasl_password is None or not self.sasl_password.get_secret_value():
                missing.append(f"{KAFKA_ENV}SASL_PASSWORD")
            if missing:
                raise ValueError(
                    f"{protocol}={self.security_protocol} logs in with SASL: set {' and '.join(missing)}"
                    f" (the password may come from {KAFKA_ENV}SASL_PASSWORD_FILE instead)"
                )
        elif credentials:
            raise ValueError(
                f"{' and '.join(credentials)} given but {protocol} is {self.security_protocol}: "
                f"set {protocol}=SASL_SSL (or SASL_PLAINTEXT) to log in, or remove {_them(credentials)}"
            )
        if files and not self.tls:
            raise ValueError(
                f"{' and '.join(files)} given but {protocol} is {self.security_protocol}: "
                f"set {protocol}=SSL (or SASL_SSL) to use TLS, or remove {_them(files)}"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError(
                f"{KAFKA_ENV}SSL_KEYFILE needs its certificate: set {KAFKA_ENV}SSL_CERTFILE"
            )
        return self


def _them(names: list[str]) -> str:
    return "it" if len(names) == 1 else "them"


class Settings(BaseSettings):
    """Everything the service is configured with; defaults run a local embedded setup."""

    model_config = SettingsConfigDict(
        env_prefix="OFFHOURS_",
        env_nested_delimiter="__",
        extra="ignore",
        # A validation error would otherwise print the input it rejected, secrets included.
        hide_input_in_errors=True,
    )

    broker_url: str | None = Field(
        default=None,
        description="kafka://host:9092 or a comma list; unset starts the embedded broker",
    )
    embedded_broker: Literal["tansu", "kafka"] = Field(
        default="tansu",
        description="the broker `offhours run` starts when broker_url is unset: `tansu` (memory only, "
        "no dependencies; a restart forgets everything) or `kafka` (Apache Kafka with its data under "
        "data_dir/kafka; a restart or a crash loses nothing; needs Java 17, and Maven the first time)",
    )
    coverage_file: Path = Path("coverage.yaml")

    events_topic: str = "social.events"
    decisions_topic: str = "offhours.decisions"
    acks_topic: str = "offhours.acks"
    routes_topic: str = "offhours.routes"
    dead_letter_topic: str = "offhours.deadletter"
    config_topic: str = "offhours.config"
    deliveries_topic: str = "offhours.deliveries"

    partitions: int = Field(default=4, ge=1)
    replication: int = Field(default=1, ge=1)
    store: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    app_id: str = "offhours"
    session_timeout: float = Field(default=10.0, gt=0, description="seconds")
    data_dir: Path = Path("offhours-data")
    broker_flavour: Literal["kafka", "tansu"] | None = Field(
        default=None,
        description="what broker_url points at: `kafka` (Apache Kafka or a broker that behaves like it: "
        "Faust's stock transport, fetch wait and recovery check, normal batching) or `tansu` "
        "(the Tansu accommodations: one record per produce batch, a 25 ms consumer fetch wait, Faust's "
        "recovery consistency check off); unset means `tansu` when "
        "one_record_batches is set (how an external Tansu was configured before) and `kafka` otherwise; "
        "set automatically for the embedded broker",
    )
    one_record_batches: bool = Field(
        default=False,
        description="write each record in its own produce batch; needed on the embedded "
        "broker (Tansu), whose reported end offsets skip the rest of a multi-record batch, "
        "so table recovery would miss the newest state; set automatically with the embedded broker "
        "and implied by broker_flavour=tansu; set alone, it also means broker_flavour=tansu",
    )
    reconcile_interval: float = Field(
        default=5.0, gt=0, description="seconds between reconciliation passes"
    )
    watchdog_after: float = Field(
        default=15.0, gt=0,
        description="seconds an events partition this worker holds may have records past the last "
        "one decided, with nothing decided, before the worker reads it again from its committed offset "
        "(on every broker: the stall was seen on Apache Kafka too)",
    )
    sweep_interval: float = Field(
        default=30.0, gt=0,
        description="seconds between passes over the promises kept in the tables "
        "(escalations due, follow-through reminders, reply windows closing)",
    )

    drain_timeout: float = Field(
        default=20.0, gt=0,
        description="seconds a stop (SIGTERM, SIGINT) waits for the work accepted before it (events, "
        "acknowledgments and staff notifications, retries included) before handing back what is left "
        "(README: Stopping: a stop loses nothing)",
    )

    retention: timedelta = Field(
        default=timedelta(days=14),
        description="how long a conversation's state, its pending escalation and a delivery-ledger entry "
        "are kept after their last activity: seconds or ISO 8601 (P14D); longer than 1 day "
        "(the longest promise, a comment's private reply, is 7 days)",
    )

    kafka: KafkaSecurity = Field(default_factory=KafkaSecurity)
    responders: ResponderSettings = ResponderSettings()
    edge: EdgeSettings = EdgeSettings()
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @field_validator("broker_url")
    @classmethod
    def _kafka_url(cls, value: str | None) -> str | None:
        return normalise_broker_url(value)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention_seconds(cls, value: Any) -> Any:
        # Environment variables are text; "1209600" means seconds, as a number would.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("retention")
    @classmethod
    def _retention_long_enough(cls, value: timedelta) -> timedelta:
        if value <= MIN_RETENTION:
            raise ValueError(
                "must be longer than 1 day (seconds or ISO 8601, e.g. P14D): conversations, pending "
                "escalations and delivery-ledger entries are deleted this long after their last activity"
            )
        return value

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("use memory:// or rocksdb://")
        return value

    @model_validator(mode="after")
    def _instagram_send_node(self) -> Settings:
        # Instagram's Send API is called on the Facebook Page linked to the Instagram
        # account (POST /{page-id}/messages with that Page's token), never on the
        # Instagram account's own id, which Graph refuses as an unknown node at the
        # first acknowledgment. An account mapped by its "ig:" key tells which is which.
        for key, account in self.edge.accounts.items():
            credentials = self.responders.accounts.get(account)
            if key.startswith("ig:") and credentials is not None and credentials.page_id == key[3:]:
                raise ValueError(
                    f"responders.accounts[{account!r}].page_id is the Instagram account id {key[3:]}: "
                    "set it to the id of the Facebook Page linked to that Instagram account "
                    "(or leave it unset to send through 'me' with the Page's token)"
                )
        return self

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and the embedded one must be started."""
        return self.broker_url is None

    @property
    def durable(self) -> bool:
        """True when the embedded broker to start is Apache Kafka with its data in ``data_dir``."""
        return self.embedded and self.embedded_broker == "kafka"

    @property
    def on_tansu(self) -> bool:
        """True when the broker is Tansu and its accommodations apply (``broker_flavour``;
        unset: when ``one_record_batches`` is set)."""
        if self.broker_flavour is not None:
            return self.broker_flavour == "tansu"
        return self.one_record_batches

    @property
    def record_per_batch(self) -> bool:
        """True when the producers write one record per produce batch: asked for, or on Tansu."""
        return self.one_record_batches or self.on_tansu

    @property
    def bootstrap_servers(self) -> list[str]:
        """The configured brokers as ``host:port`` strings, the form aiokafka takes."""
        if self.broker_url is None:
            raise ValueError("no broker configured (embedded broker not started yet)")
        return [url.split("://", 1)[-1].rstrip("/") for url in self.broker_url.split(",")]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced; None leaves a field as it is.

        For CLI flags and the address of a started embedded broker.
        """
        update = {k: v for k, v in changes.items() if v is not None}
        if "broker_url" in update:
            update["broker_url"] = normalise_broker_url(update["broker_url"])
        return self.model_copy(update=update)


def normalise_broker_url(value: str | None) -> str | None:
    """``kafka://host:port`` for each broker of a comma list; None when blank."""
    if value is None or not value.strip():
        return None
    urls = [part.strip() for part in value.split(",") if part.strip()]
    return ",".join(url if "://" in url else f"kafka://{url}" for url in urls)
