"""Issue 17: the Tansu accommodations apply on Tansu only (``Settings.broker_flavour``).

On Apache Kafka :func:`streams.app.faust_options` gives Faust's aiokafka transport
with Faust's fetch wait once idle, the recovery consistency check on and normal produce
batches; on Tansu (embedded, or named by ``broker_flavour=tansu`` or, as before, by
``one_record_batches``) the transport with Tansu's short idle wait, the check off and one
record per batch. On both the transport hands fetches over safely (``streams.transport``,
the takeover stall) and fetches with a 25 ms wait while records come: fixes of Faust, not
Tansu accommodations. Pure: no broker, no app.
"""

from __future__ import annotations

import pytest
from faust.transport import by_url
from faust.transport.drivers import aiokafka as stock

import streams.transport as tansu_transport
from streams.app import faust_options
from streams.settings import Settings

BROKERS = "kafka://k1:9092,kafka://k2:9092"
ON_KAFKA = "offhours+apache://k1:9092,offhours+apache://k2:9092"


def options(**changes: object) -> dict[str, object]:
    return faust_options(Settings(broker_url=BROKERS, **changes))


class TestOnApacheKafka:
    @pytest.mark.parametrize("changes", [{}, {"broker_flavour": "kafka"}], ids=["default", "explicit"])
    def test_the_stock_kafka_transport_and_faust_defaults(self, changes: dict[str, object]) -> None:
        got = options(**changes)
        assert ON_KAFKA == got["broker"]
        assert got["recovery_consistency_check"] is True
        assert 16384 == got["producer_max_batch_size"]

    def test_the_url_selects_faust_own_transport_with_the_safe_fetch_hand_off(self) -> None:
        """Faust's aiokafka transport; its consumer waits 25 ms while records come and Faust's 1.5 s once idle."""
        transport = by_url(str(options()["broker"]).split(",")[0])
        assert tansu_transport.ApacheTransport is transport
        assert issubclass(transport, stock.Transport)
        assert tansu_transport.ApacheConsumer is transport.Consumer
        thread = tansu_transport.ApacheConsumerThread
        assert issubclass(thread, tansu_transport.ConsumerThread)
        assert (25, 1500) == (tansu_transport.FETCH_MAX_WAIT_MS, thread.idle_fetch_wait_ms)

    def test_one_record_batches_can_still_be_asked_for_on_kafka(self) -> None:
        got = options(broker_flavour="kafka", one_record_batches=True)
        assert 1 == got["producer_max_batch_size"]
        assert ON_KAFKA == got["broker"]
        assert got["recovery_consistency_check"] is True

    def test_settings_say_kafka(self) -> None:
        settings = Settings(broker_url=BROKERS)
        assert (False, False) == (settings.on_tansu, settings.record_per_batch)


class TestOnTansu:
    @pytest.mark.parametrize(
        "changes",
        [{"broker_flavour": "tansu"}, {"one_record_batches": True}, {"broker_flavour": "tansu", "one_record_batches": True}],
        ids=["flavour", "one-record-batches-as-before", "both"],
    )
    def test_every_accommodation(self, changes: dict[str, object]) -> None:
        got = options(**changes)
        assert "offhours+kafka://k1:9092,offhours+kafka://k2:9092" == got["broker"]
        assert got["recovery_consistency_check"] is False
        assert 1 == got["producer_max_batch_size"]

    def test_the_url_selects_the_short_fetch_transport(self) -> None:
        assert tansu_transport.Transport is by_url(str(options(broker_flavour="tansu")["broker"]).split(",")[0])
        assert (25, 100) == (tansu_transport.FETCH_MAX_WAIT_MS, tansu_transport.ConsumerThread.idle_fetch_wait_ms)
        assert issubclass(tansu_transport.ConsumerThread, tansu_transport.SafeFetchConsumerThread)

    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OFFHOURS_BROKER_URL", BROKERS)
        monkeypatch.setenv("OFFHOURS_BROKER_FLAVOUR", "tansu")
        settings = Settings()
        assert (True, True) == (settings.on_tansu, settings.record_per_batch)

    def test_an_unknown_flavour_is_refused(self) -> None:
        with pytest.raises(ValueError, match="broker_flavour"):
            Settings(broker_url=BROKERS, broker_flavour="redpanda")  # type: ignore[arg-type]


class TestSharedOptions:
    @pytest.mark.parametrize("flavour", ["kafka", "tansu"])
    def test_the_rest_does_not_depend_on_the_broker(self, flavour: str) -> None:
        """Session, heartbeat, acks and serializers are offhours' own on both brokers."""
        got = options(broker_flavour=flavour, session_timeout=6.0)
        assert (6.0, 1.0, -1, "raw", "raw") == (
            got["broker_session_timeout"],
            got["broker_heartbeat_interval"],
            got["producer_acks"],
            got["key_serializer"],
            got["value_serializer"],
        )

    def test_no_broker_yet(self) -> None:
        assert None is faust_options(Settings(broker_flavour="tansu"))["broker"]


class TestEmbeddedBroker:
    async def test_broker_for_marks_the_embedded_tansu(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``offhours run`` without a broker starts Tansu and says so in the settings."""
        import offhours.service as service

        class FakeTansu:
            url = "kafka://127.0.0.1:1"

            async def __aenter__(self) -> FakeTansu:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

        monkeypatch.setattr(service, "EmbeddedBroker", FakeTansu)
        async with service.broker_for(Settings()) as running:
            assert ("tansu", True, True) == (running.broker_flavour, running.one_record_batches, running.on_tansu)

    async def test_a_configured_broker_is_left_as_configured(self) -> None:
        import offhours.service as service

        async with service.broker_for(Settings(broker_url=BROKERS)) as running:
            assert (None, False) == (running.broker_flavour, running.on_tansu)
