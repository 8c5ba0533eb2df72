"""What the service can do with the settings it has, and which setting turns on the rest.

One table, :data:`CAPABILITIES`: each channel (receiving a platform's webhook and
answering its customers), each staff notifier and the operations API, with the
settings it needs. The start banner of ``offhours run`` / ``offhours ingest``,
``offhours config check`` and the ``503`` answer of a webhook whose secret is missing
all read it, so they name the same ``OFFHOURS_...`` variable.

Only the names of settings are ever shown, never their values. This module imports
no settings at run time (the webhooks import it), only reads a settings object it is
given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from streams.settings import Settings

ENV_PREFIX = "OFFHOURS_"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting by its place in :class:`~streams.settings.Settings`, e.g. ``edge.generic_secret``.

    ``file``: a ``*_FILE`` companion may hold it instead (read at start into this field).
    ``explicit``: the setting has a working default that is rarely right (the SMTP host),
    so it counts as configured only when it was set.
    """

    path: tuple[str, ...]
    file: bool = False
    explicit: bool = False

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``OFFHOURS_EDGE__GENERIC_SECRET``."""
        return ENV_PREFIX + "__".join(part.upper() for part in self.path)

    @property
    def named(self) -> str:
        """The variable as the operator reads it, with its file alternative."""
        return f"{self.env} or {self.env}_FILE" if self.file else self.env

    def value(self, settings: Settings) -> Any:
        node: Any = settings
        for part in self.path:
            node = getattr(node, part)
        return node

    def is_set(self, settings: Settings) -> bool:
        if self.explicit:
            node: Any = settings
            for part in self.path[:-1]:
                node = getattr(node, part)
            return self.path[-1] in node.model_fields_set
        value = self.value(settings)
        return value is not None and value != {} and value != ()


def _setting(*path: str, file: bool = False, explicit: bool = False) -> Setting:
    return Setting(tuple(path), file=file, explicit=explicit)


# The settings named by more than one capability (and by the webhooks' 503 answers).
META_APP_SECRET = _setting("edge", "meta_app_secret")
META_VERIFY_TOKEN = _setting("edge", "meta_verify_token")
X_CONSUMER_SECRET = _setting("edge", "x_consumer_secret")
TELEGRAM_SECRET_TOKEN = _setting("edge", "telegram_secret_token")
GENERIC_SECRET = _setting("edge", "generic_secret")
CHATWOOT_WEBHOOK_SECRET = _setting("edge", "chatwoot_webhook_secret")
RESPONDER_ACCOUNTS = _setting("responders", "accounts")
SIGNING_SECRET = _setting("responders", "signing_secret", file=True)
SMTP_HOST = _setting("responders", "smtp_host", explicit=True)
TELEGRAM_NOTIFY_TOKEN = _setting("responders", "telegram_notify_token", file=True)
CHATWOOT_URL = _setting("responders", "chatwoot_url")
CHATWOOT_TOKEN = _setting("responders", "chatwoot_token", file=True)
OPS_TOKENS = _setting("ops", "tokens")
LINK_SECRET = _setting("ops", "link_secret", explicit=True)
BROKER_URL = _setting("broker_url")

WEBHOOK_SECRETS: dict[str, Setting] = {
    "meta": META_APP_SECRET,
    "x": X_CONSUMER_SECRET,
    "telegram": TELEGRAM_SECRET_TOKEN,
    "generic": GENERIC_SECRET,
    "chatwoot": CHATWOOT_WEBHOOK_SECRET,
}
"""The secret without which each webhook answers ``503`` (the Meta handshake also needs
:data:`META_VERIFY_TOKEN`)."""


@dataclass(frozen=True, slots=True)
class Need:
    """One thing a capability needs: ``what`` it is for and the ``settings`` that give it.

    Met when every setting is set, or, with ``check``, when ``check`` says so (e.g. an
    account with an access token in ``OFFHOURS_RESPONDERS__ACCOUNTS``); ``detail`` then
    says what the setting must hold.
    """

    what: str
    settings: tuple[Setting, ...]
    detail: str = ""
    check: Callable[[Settings], bool] | None = None

    def met(self, settings: Settings) -> bool:
        if self.check is not None:
            return self.check(settings)
        return all(setting.is_set(settings) for setting in self.settings)

    def advice(self) -> str:
        names = " and ".join(setting.named for setting in self.settings)
        return f"to {self.what} set {names}" + (f" ({self.detail})" if self.detail else "")


Group = Literal["channel", "notifier", "api"]


@dataclass(frozen=True, slots=True)
class Capability:
    """A channel, a notifier or the operations API, and what it needs to work.

    ``ready`` says what works once configured (a route, the coverage's ``notify``
    URIs); a capability without needs works as it is.
    """

    group: Group
    name: str
    ready: str
    needs: tuple[Need, ...] = ()


def _account_with(*fields: str) -> Callable[[Settings], bool]:
    def check(settings: Settings) -> bool:
        return any(
            all(getattr(credentials, name) is not None for name in fields)
            for credentials in settings.responders.accounts.values()
        )

    return check


def _generic_sender(settings: Settings) -> bool:
    default = settings.responders.signing_secret
    return any(
        credentials.webhook_url and (credentials.signing_secret or default) is not None
        for credentials in settings.responders.accounts.values()
    )


_META_RECEIVE = Need("receive", (META_APP_SECRET, META_VERIFY_TOKEN))
_DESK_ANSWER = Need(
    "answer", (CHATWOOT_URL, CHATWOOT_TOKEN),
    "the install's base URL and the access token of the Chatwoot user offhours acts as",
)
_TOKEN_ANSWER = Need("answer", (RESPONDER_ACCOUNTS,), "an account with an access_token", _account_with("access_token"))

CAPABILITIES: tuple[Capability, ...] = (
    Capability("channel", "facebook", "receives on /webhooks/meta, answers", (_META_RECEIVE, _TOKEN_ANSWER)),
    Capability("channel", "instagram", "receives on /webhooks/meta, answers", (_META_RECEIVE, _TOKEN_ANSWER)),
    Capability(
        "channel", "whatsapp", "receives on /webhooks/meta, answers",
        (_META_RECEIVE, Need("answer", (RESPONDER_ACCOUNTS,), "an account with phone_number_id and access_token",
                             _account_with("phone_number_id", "access_token"))),
    ),
    Capability("channel", "x", "receives on /webhooks/x, answers", (Need("receive", (X_CONSUMER_SECRET,)), _TOKEN_ANSWER)),
    Capability(
        "channel", "telegram", "receives on /webhooks/telegram, answers",
        (Need("receive", (TELEGRAM_SECRET_TOKEN,)),
         Need("answer", (RESPONDER_ACCOUNTS,), "the bot's account with its access_token", _account_with("access_token"))),
    ),
    Capability(
        "channel", "generic", "receives on /webhooks/generic, answers",
        (Need("receive", (GENERIC_SECRET,)),
         Need("answer", (RESPONDER_ACCOUNTS,), "an account with webhook_url, and signing_secret there or in "
              f"{SIGNING_SECRET.env}", _generic_sender)),
    ),
    Capability(
        "channel", "chatwoot",
        "receives on /webhooks/chatwoot (a Chatwoot desk's account webhook), answers through the desk",
        (Need("receive", (CHATWOOT_WEBHOOK_SECRET,), "the secret Chatwoot shows for the webhook"), _DESK_ANSWER),
    ),
    Capability("notifier", "slack", "nothing to set; the URL is a staff member's notify in the coverage, slack:https://..."),
    Capability("notifier", "teams", "nothing to set; the URL is a staff member's notify in the coverage, teams:https://..."),
    Capability(
        "notifier", "e-mail", "sends mailto: notify through the SMTP relay",
        (Need("send", (SMTP_HOST,), "and _PORT, _FROM, _USERNAME, _PASSWORD as the relay needs; "
              "unset it is localhost:25"),),
    ),
    Capability("notifier", "webhook", "signs webhook:https://... notify", (Need("sign", (SIGNING_SECRET,)),)),
    Capability(
        "notifier", "telegram", "sends telegram:CHAT_ID notify",
        (Need("send", (TELEGRAM_NOTIFY_TOKEN,), "the bot token BotFather gave"),),
    ),
    Capability(
        "api", "operations API", "bearer tokens, claim links signed with a shared key",
        (Need("accept calls", (OPS_TOKENS,), "identity -> token, e.g. '{\"ops:anna\": \"s3cr3t\"}'"),
         Need("keep claim links valid across processes and restarts", (LINK_SECRET,),
              "unset: a random key per process")),
    ),
)
"""Every capability, in the order the banner and ``offhours config check`` list them."""


@dataclass(frozen=True, slots=True)
class Status:
    """A capability and which of its needs are not met."""

    capability: Capability
    missing: tuple[Need, ...]

    @property
    def configured(self) -> bool:
        return not self.missing

    @property
    def partly(self) -> bool:
        return bool(self.missing) and len(self.missing) < len(self.capability.needs)


def statuses(settings: Settings) -> list[Status]:
    """The status of every capability of :data:`CAPABILITIES`, in order."""
    return [
        Status(capability, tuple(need for need in capability.needs if not need.met(settings)))
        for capability in CAPABILITIES
    ]


def status_lines(settings: Settings) -> list[str]:
    """One line per capability: configured, or what is missing and which variable to set."""
    lines = []
    for status in statuses(settings):
        capability = status.capability
        label = f"{capability.group} {capability.name}" if capability.group != "api" else capability.name
        if status.configured:
            text = f"configured: {capability.ready}"
        else:
            met = [need.what for need in capability.needs if need not in status.missing]
            state = f"partly configured (can {', '.join(met)})" if met else "not configured"
            text = f"{state}: " + "; ".join(need.advice() for need in status.missing)
        lines.append(f"{label + ':':<18} {text}")
    return lines


DESK_ACCOUNT_PREFIX = "chatwoot:"
"""How a coverage account answered through a Chatwoot desk begins (``chatwoot:<account>/<inbox>``,
``schedules.chatwoot_account``)."""


def is_desk_account(account: str) -> bool:
    """Whether ``account`` is a Chatwoot desk's inbox (answered through the desk, not a platform)."""
    return account.startswith(DESK_ACCOUNT_PREFIX)


def accounts_without_credentials(settings: Settings, accounts: Iterable[str]) -> list[str]:
    """The coverage ``accounts`` offhours has nothing to answer with: a platform account that
    ``OFFHOURS_RESPONDERS__ACCOUNTS`` gives no token or ``webhook_url``, a Chatwoot desk's
    inbox (``chatwoot:<account>/<inbox>``) while the desk's URL or token is unset."""
    desk = _DESK_ANSWER.met(settings)
    return sorted(
        account
        for account in set(accounts)
        if (not desk if is_desk_account(account) else (
            (credentials := settings.responders.accounts.get(account)) is None
            or (credentials.access_token is None and not credentials.webhook_url)
        ))
    )


def credential_advice(settings: Settings, accounts: Iterable[str]) -> list[str]:
    """What to set for :func:`accounts_without_credentials`: one sentence for the platform
    accounts (``OFFHOURS_RESPONDERS__ACCOUNTS``), one for the desk's inboxes (the desk's URL
    and token); empty when every account can be answered."""
    missing = accounts_without_credentials(settings, accounts)
    platform = [account for account in missing if not is_desk_account(account)]
    desk = [account for account in missing if is_desk_account(account)]
    advice = []
    if platform:
        advice.append(f"no credentials to answer as {', '.join(platform)}: add them to {RESPONDER_ACCOUNTS.env}")
    if desk:
        advice.append(
            f"no credentials to answer as {', '.join(desk)} (Chatwoot desk inboxes): set "
            f"{CHATWOOT_URL.env} and {CHATWOOT_TOKEN.named}"
        )
    return advice


EMBEDDED_BROKER = _setting("embedded_broker")

EMBEDDED_RESTART_WARNING = (
    "the embedded broker keeps everything in memory: a restart forgets the overrides made through "
    "the API, conversation state, pending escalations and reminders, and the delivery ledger, so a "
    "platform's redelivery after a restart is decided again and the customer may be acknowledged "
    f"twice. To keep them on this machine set {EMBEDDED_BROKER.env}=kafka (Apache Kafka with its data "
    f"in OFFHOURS_DATA_DIR; needs Java 17), or run Apache Kafka and set {BROKER_URL.env} "
    "(README: Production on Apache Kafka)."
)
"""What the banner says when the service runs on the embedded, memory-only broker."""


def restart_warning(settings: Settings) -> str | None:
    """:data:`EMBEDDED_RESTART_WARNING` when ``settings`` start the memory-only embedded broker, else None."""
    return EMBEDDED_RESTART_WARNING if settings.embedded and not settings.durable else None
