"""Which adapter answers which channel, which notifier serves which URI scheme, and
which care desk acts for a request's ``desk`` block.

A new platform is one module plus one line here. The tables are read-only; the
adapters are built per service from the one settings object and the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .base import Clock, CustomerSender, StaffNotifier
from .config import ResponderSettings
from .desk import DeskActions, build_desks
from .mail import MailNotifier
from .messenger import MessengerSender
from .slack import SlackNotifier
from .teams import TeamsNotifier
from .telegram import TelegramNotifier, TelegramSender
from .webhook import WebhookNotifier, WebhookSender
from .whatsapp import WhatsAppSender
from .x import XSender

CUSTOMER_SENDERS: Mapping[str, Callable[[ResponderSettings, Clock], CustomerSender]] = (
    MappingProxyType(
        {
            "facebook": MessengerSender,
            "instagram": MessengerSender,
            "whatsapp": WhatsAppSender,
            "x": XSender,
            "telegram": TelegramSender,
            "generic": WebhookSender,
        }
    )
)

STAFF_NOTIFIERS: Mapping[str, Callable[[ResponderSettings, Clock], StaffNotifier]] = (
    MappingProxyType(
        {
            "slack": SlackNotifier,
            "teams": TeamsNotifier,
            "mailto": MailNotifier,
            "webhook": WebhookNotifier,
            "telegram": TelegramNotifier,
        }
    )
)


@dataclass(frozen=True, slots=True)
class Registry:
    """The adapters of one service: customer senders by channel, notifiers by URI scheme,
    and the care desks (:mod:`responders.desk`) by a request's ``desk.kind``."""

    senders: Mapping[str, CustomerSender]
    notifiers: Mapping[str, StaffNotifier]
    desks: Mapping[str, DeskActions] = field(default_factory=lambda: MappingProxyType({}))


def build_registry(settings: ResponderSettings, clock: Clock) -> Registry:
    """One adapter per channel and scheme, sharing the settings and the clock."""
    return Registry(
        senders=MappingProxyType(
            {name: make(settings, clock) for name, make in CUSTOMER_SENDERS.items()}
        ),
        notifiers=MappingProxyType(
            {name: make(settings, clock) for name, make in STAFF_NOTIFIERS.items()}
        ),
        desks=MappingProxyType(dict(build_desks(settings, clock))),
    )
