"""What the start banner and ``offhours config check`` say is configured, built without starting anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge import capabilities
from offhours.cli import main
from offhours.service import configuration_lines, run_banner
from schedules import chatwoot_account, load_coverage
from streams.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GENERIC_SECRET = "generic-secret-0123456789"
TOKEN = "t0ken-of-anna-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the environment: none of the developer's OFFHOURS_* variables."""
    for name in list(os.environ):
        if name.startswith("OFFHOURS_"):
            monkeypatch.delenv(name)


def banner(settings: Settings) -> str:
    coverage = load_coverage(EXAMPLES / "coverage.yaml")
    live = settings.with_overrides(broker_url=settings.broker_url or "kafka://127.0.0.1:40213")
    return "\n".join(run_banner(settings, live, coverage, "http://127.0.0.1:8080"))


def line_of(text: str, label: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip().startswith(label))


class TestRestartWarning:
    def test_the_embedded_broker_says_what_a_restart_forgets_and_what_to_run_instead(self) -> None:
        text = " ".join(banner(Settings()).split())
        assert all(
            phrase in text
            for phrase in (
                "broker: kafka://127.0.0.1:40213 (embedded, memory only)",
                "warning: the embedded broker keeps everything in memory: a restart forgets the overrides made "
                "through the API, conversation state, pending escalations and reminders, and the delivery ledger",
                "the customer may be acknowledged twice",
                "run Apache Kafka and set OFFHOURS_BROKER_URL (README: Production on Apache Kafka)",
            )
        ), text

    def test_the_memory_only_warning_names_the_durable_mode(self) -> None:
        text = " ".join(banner(Settings()).split())
        assert "To keep them on this machine set OFFHOURS_EMBEDDED_BROKER=kafka" in text, text

    def test_no_warning_on_the_durable_embedded_kafka(self, tmp_path: Path) -> None:
        """OFFHOURS_EMBEDDED_BROKER=kafka: the banner names Apache Kafka and its data folder, and warns of nothing."""
        text = banner(Settings(embedded_broker="kafka", data_dir=tmp_path / "data"))
        broker = line_of(text, "broker:")
        assert (True, True, False) == (
            broker.startswith("broker:   kafka://127.0.0.1:40213 (embedded Apache Kafka 4."),
            f"data in {tmp_path / 'data' / 'kafka'}" in broker,
            "warning:" in text,
        ), text

    def test_no_warning_on_apache_kafka(self) -> None:
        text = banner(Settings(broker_url="kafka://kafka-0.internal:9092"))
        assert ("broker:   kafka://kafka-0.internal:9092", False, False) == (
            line_of(text, "broker:"), "warning:" in text, "embedded" in text,
        )


class TestConfigured:
    def test_nothing_configured_names_the_variable_of_every_missing_need(self) -> None:
        text = "\n".join(configuration_lines(Settings()))
        expected = {
            "channel generic:": "channel generic:   not configured: to receive set OFFHOURS_EDGE__GENERIC_SECRET;",
            "notifier webhook:": "notifier webhook:  not configured: to sign set OFFHOURS_RESPONDERS__SIGNING_SECRET "
            "or OFFHOURS_RESPONDERS__SIGNING_SECRET_FILE",
            "notifier slack:": "notifier slack:    configured: nothing to set;",
            "operations API:": "operations API:    not configured: to accept calls set OFFHOURS_OPS__TOKENS ",
        }
        assert expected == {label: line_of(text, label)[: len(start)] for label, start in expected.items()}

    def test_what_is_set_is_configured_and_no_value_is_shown(self) -> None:
        settings = Settings.model_validate({
            "edge": {"generic_secret": GENERIC_SECRET},
            "responders": {"accounts": {"acme.it.facebook": {"webhook_url": "http://127.0.0.1:9/hook",
                                                             "signing_secret": GENERIC_SECRET}},
                           "smtp_host": "127.0.0.1"},
            "ops": {"tokens": {"ops:anna": TOKEN}},
        })
        text = "\n".join(configuration_lines(settings))
        expected = {
            "channel generic:": "channel generic:   configured: receives on /webhooks/generic, answers",
            "notifier e-mail:": "notifier e-mail:   configured: sends mailto: notify through the SMTP relay",
            "operations API:": "operations API:    partly configured (can accept calls): to keep claim links valid",
        }
        assert (expected, False) == (
            {label: line_of(text, label)[: len(start)] for label, start in expected.items()},
            GENERIC_SECRET in text or TOKEN in text,
        )

    def test_coverage_accounts_without_credentials_are_named(self) -> None:
        coverage = load_coverage(EXAMPLES / "coverage.yaml")
        settings = Settings.model_validate({"responders": {"accounts": {"acme.it.facebook": {"access_token": TOKEN}}}})
        line = line_of("\n".join(configuration_lines(settings, coverage)), "accounts:")
        assert ("acme.it.facebook" in line, "acme_us_x" in line, line.endswith("OFFHOURS_RESPONDERS__ACCOUNTS")) == (
            False, True, True,
        )

    def test_desk_inboxes_need_the_desk_url_and_token_not_accounts(self) -> None:
        """A Chatwoot team's accounts (chatwoot:7/12, ...) are answered through the desk: named with
        the desk's two variables while either is unset, never sent to OFFHOURS_RESPONDERS__ACCOUNTS."""
        coverage = load_coverage(EXAMPLES / "coverage-chatwoot.yaml")
        desk = {"chatwoot_url": "https://desk.example.com", "chatwoot_token": TOKEN}
        said = {
            name: [line.strip() for line in configuration_lines(Settings.model_validate({"responders": responders}),
                                                                   coverage) if "accounts:" in line]
            for name, responders in (("none", {}), ("url only", {"chatwoot_url": desk["chatwoot_url"]}),
                                     ("both", desk))
        }
        expected = ("accounts:          no credentials to answer as chatwoot:7/12, chatwoot:7/13, chatwoot:7/15 "
                    "(Chatwoot desk inboxes): set OFFHOURS_RESPONDERS__CHATWOOT_URL and "
                    "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN or OFFHOURS_RESPONDERS__CHATWOOT_TOKEN_FILE")
        assert {"none": [expected], "url only": [expected], "both": []} == said
        assert TOKEN not in " ".join(configuration_lines(Settings.model_validate({"responders": desk}), coverage))

    def test_desk_and_platform_accounts_are_advised_apart(self) -> None:
        """Both kinds missing: one sentence each, each naming its own variables."""
        settings = Settings.model_validate({"responders": {"accounts": {"acme.it.facebook": {"access_token": TOKEN}}}})
        assert [
            "no credentials to answer as acme_it_x: add them to OFFHOURS_RESPONDERS__ACCOUNTS",
            "no credentials to answer as chatwoot:1/3 (Chatwoot desk inboxes): set OFFHOURS_RESPONDERS__CHATWOOT_URL "
            "and OFFHOURS_RESPONDERS__CHATWOOT_TOKEN or OFFHOURS_RESPONDERS__CHATWOOT_TOKEN_FILE",
        ] == capabilities.credential_advice(settings, ["chatwoot:1/3", "acme.it.facebook", "acme_it_x"])

    def test_the_desk_prefix_is_the_coverage_s(self) -> None:
        assert capabilities.is_desk_account(chatwoot_account(1, 3)) and not capabilities.is_desk_account("acme_it_x")

    def test_the_chatwoot_channel_answers_once_the_desk_is_set(self) -> None:
        settings = Settings.model_validate({"edge": {"chatwoot_webhook_secret": GENERIC_SECRET}})
        line = line_of("\n".join(configuration_lines(settings)), "channel chatwoot:")
        assert line.startswith(
            "channel chatwoot:  partly configured (can receive): to answer set OFFHOURS_RESPONDERS__CHATWOOT_URL and "
            "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN or OFFHOURS_RESPONDERS__CHATWOOT_TOKEN_FILE"
        ), line

    def test_every_webhook_secret_is_a_receive_need_of_the_table(self) -> None:
        receive = {
            setting for capability in capabilities.CAPABILITIES for need in capability.needs
            if need.what == "receive" for setting in need.settings
        }
        assert set(capabilities.WEBHOOK_SECRETS.values()) <= receive


class TestConfigCheck:
    def test_unconfigured_is_information_exit_0(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = main(["config", "check"])
        out = capsys.readouterr().out
        assert (0, True, True) == (
            code, "OFFHOURS_EDGE__META_APP_SECRET" in out, "warning:  the embedded broker" in out,
        )

    def test_an_invalid_setting_exits_2_naming_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("OFFHOURS_EDGE__GENERIC_SECRET", "short-secret")
        code = main(["config", "check"])
        err = capsys.readouterr().err
        assert (2, True, False) == (code, "OFFHOURS_EDGE__GENERIC_SECRET is too short" in err, "short-secret" in err)

    def test_the_local_example_is_valid_and_configures_the_demo(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for name, value in read_env_file(EXAMPLES / "local.env").items():
            monkeypatch.setenv(name, value)
        code = main(["config", "check", "--coverage", str(EXAMPLES / "coverage.yaml")])
        out = capsys.readouterr().out
        states = {
            label: line_of(out, label).removeprefix(label).strip().split(":")[0]
            for label in ("channel facebook:", "channel x:", "channel generic:", "notifier e-mail:",
                          "notifier webhook:", "operations API:", "notifier telegram:", "channel chatwoot:")
        }
        assert (0, False) == (code, "accounts:" in out), out
        assert {
            "channel facebook:": "configured", "channel x:": "configured",
            "channel generic:": "partly configured (can receive)",
            "notifier e-mail:": "configured", "notifier webhook:": "configured", "operations API:": "configured",
            "notifier telegram:": "not configured", "channel chatwoot:": "configured",
        } == states

    def test_the_local_example_points_at_the_fakes_as_they_say(self) -> None:
        """examples/local.env holds what ``python -m responders.fakes`` prints on its default ports."""
        from responders.fakes.__main__ import DEFAULT_PORT_BASE, environment

        base = DEFAULT_PORT_BASE
        printed = environment(f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}",
                              f"http://127.0.0.1:{base + 2}", base + 4, f"http://127.0.0.1:{base + 5}")
        example = read_env_file(EXAMPLES / "local.env")
        assert printed == {name: example.get(name) for name in printed}


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a shell ``.env`` file of ``NAME='value'`` lines (as ``set -a; . FILE`` sets them)."""
    import shlex

    variables = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = "".join(shlex.split(value))
    return variables
