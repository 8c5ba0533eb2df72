"""The one settings object of the service.

:class:`Settings` is built once, at the entry point, from the environment
(``OFFHOURS_`` prefix, ``__`` between nested names, e.g.
``OFFHOURS_RESPONDERS__SMTP_HOST``) and the command-line flags, then passed down.
Nothing else in the code base reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edge.config import EdgeSettings
from edge.ops_config import OpsSettings
from responders.config import ResponderSettings


class Settings(BaseSettings):
    """Everything the service is configured with; defaults run a local embedded setup."""

    model_config = SettingsConfigDict(
        env_prefix="OFFHOURS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    broker_url: str | None = Field(
        default=None,
        description="kafka://host:9092 or a comma list; unset starts the embedded broker",
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
    one_record_batches: bool = Field(
        default=False,
        description="write each record in its own produce batch; needed on the embedded "
        "broker (Tansu), whose reported end offsets skip the rest of a multi-record batch, "
        "so table recovery would miss the newest state; set automatically with the embedded broker",
    )
    reconcile_interval: float = Field(
        default=5.0, gt=0, description="seconds between reconciliation passes"
    )

    responders: ResponderSettings = ResponderSettings()
    edge: EdgeSettings = EdgeSettings()
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @field_validator("broker_url")
    @classmethod
    def _kafka_url(cls, value: str | None) -> str | None:
        return normalise_broker_url(value)

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("use memory:// or rocksdb://")
        return value

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and the embedded one must be started."""
        return self.broker_url is None

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
