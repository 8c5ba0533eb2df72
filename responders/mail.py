"""Staff notifier for ``mailto:<address>`` URIs: SMTP through ``aiosmtplib``.

One ``multipart/alternative`` message: a plain-text part and an HTML part with the
same facts and the claim link the caller supplied. The HTML part is an autoescaped
template (:meth:`~responders.notice.Notice.html`) and the subject is one line, so the
customer's name and words cannot add markup or headers. SMTP replies map to outcomes by
their class: ``4xx`` (and connection failures, timeouts) retry, ``5xx`` is Permanent
(a refused recipient, a rejected message); ``535`` authentication failures also alert
operations. The SMTP password never appears in a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiohttp
import aiosmtplib

from .base import OPS_ALERT, Clock, Delivered, Limit, Outcome, Permanent, Retry
from .config import ResponderSettings
from .notice import Notice


def mail_message(notice: Notice, sender: str) -> EmailMessage:
    """The e-mail for one notice: plain text, then HTML as the preferred alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notice.address
    message["Subject"] = notice.title
    message["Date"] = format_datetime(notice.now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-Offhours-Route"] = notice.route.route_id
    message.set_content(notice.plain_text())
    message.add_alternative(notice.html(), subtype="html")
    return message


class MailNotifier:
    """Sends a notice by e-mail through the configured SMTP server."""

    def __init__(self, settings: ResponderSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock

    def limits(self, notice: Notice) -> Sequence[Limit]:
        return ()

    async def send(self, notice: Notice, session: aiohttp.ClientSession) -> Outcome:
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                mail_message(notice, settings.smtp_from),
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({refused.code for refused in exc.recipients})
            if all(400 <= code < 500 for code in codes):
                return Retry(None, f"mail: recipient deferred ({codes})")
            return Permanent(f"mail: recipient refused ({codes})")
        except aiosmtplib.SMTPAuthenticationError as exc:
            return Permanent(f"mail: SMTP {exc.code}: {OPS_ALERT}", alert_operations=True)
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                return Retry(None, f"mail: SMTP {exc.code}")
            return Permanent(f"mail: SMTP {exc.code}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Retry(None, f"mail: connection failed ({type(exc).__name__})")
        return Delivered(None)
