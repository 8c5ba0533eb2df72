"""A real local SMTP server (``aiosmtpd``) that keeps the messages it accepts."""

from __future__ import annotations

import asyncio
import logging
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger("responders.fakes")


class _Handler:
    def __init__(self, owner: FakeSmtp) -> None:
        self._owner = owner

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self._owner.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self._owner.deliver(message)  # type: ignore[arg-type]
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeSmtp:
    """An ``aiosmtpd`` controller on 127.0.0.1; ``refuse`` lists addresses answered 550.

    ``port`` 0 picks a free one. Each accepted message is logged on the
    ``responders.fakes`` logger at INFO (recipients and subject).
    """

    def __init__(self, refuse: set[str] | None = None, port: int = 0) -> None:
        self.refuse = refuse or set()
        self.messages: list[EmailMessage] = []
        self.port = port or _free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def deliver(self, message: EmailMessage) -> None:
        # aiosmtpd runs its own loop on a thread: hand the message to the test's loop.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._accept, message)

    def _accept(self, message: EmailMessage) -> None:
        log.info("FakeSmtp mail to %s: %s", message["To"], message["Subject"])
        self.messages.append(message)
        assert self._arrived is not None
        self._arrived.set()

    async def wait_for_message(self, timeout: float = 5.0) -> EmailMessage:
        assert self._arrived is not None
        await asyncio.wait_for(self._arrived.wait(), timeout)
        return self.messages[-1]

    async def __aenter__(self) -> FakeSmtp:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        await self._loop.run_in_executor(None, self._controller.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._controller.stop)
