"""``python -m responders.fakes``: the fake platforms as one local process, to watch acks arrive.

Starts, on 127.0.0.1, the fake Graph API (Messenger, Instagram, WhatsApp), X,
Telegram, a Slack incoming webhook, an SMTP server and a Chatwoot desk (account 1,
inbox 3, conversation 10, agents 42 and 43, offhours acting as user 41 with
:data:`CHATWOOT_TOKEN`), on consecutive ports from
``--port-base`` (default 8781; 0 picks free ports). It prints each URL, the
``OFFHOURS_RESPONDERS__…`` environment that points ``offhours run`` at them and the
Slack notify URI to put in a coverage file, then logs every request it receives
(method, route, status, body) until interrupted. The tokens are fixed demo values
that only these fakes accept.

``python -m responders.fakes customer-writes TEXT`` (another terminal) makes the
running desk's customer write in conversation 10: the desk posts the signed
``message_created`` webhook to offhours (docs/chatwoot.md, "Watch it work against the
fake desk").

Like the real platforms, the fakes only answer customers who wrote first. They start
knowing the sample customers of ``docs/fakes.md`` and ``examples/events.jsonl``
(:data:`SAMPLE_CUSTOMERS`, :data:`SAMPLE_COMMENTS`, :data:`SAMPLE_X_USERS`,
:data:`SAMPLE_X_POSTS`, :data:`SAMPLE_TELEGRAM_MESSAGES`), each with a last message at
the time the fakes started: their 24-hour reply windows (7 days for a comment's private
reply) are open from then. Anyone else is refused as the platform would refuse them
(Graph: "No matching user found"; WhatsApp: 131026; Telegram: "chat not found"; X:
400 Invalid Request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import orjson

from .chatwoot import CONTROL_ROUTE, CONTROL_SECRET_HEADER, FakeChatwoot
from .meta import FakeGraph
from .slack import FakeSlack
from .smtp import FakeSmtp
from .telegram import FakeTelegram
from .x import FakeX

DEFAULT_PORT_BASE = 8781
GRAPH_TOKEN = "fake-graph-token"
X_TOKEN = "fake-x-token"
TELEGRAM_TOKEN = "123456:fake-telegram-token"
CHATWOOT_TOKEN = "fake-chatwoot-user-token"
# Who the docs and examples write as: Messenger PSIDs and a WhatsApp wa_id.
SAMPLE_CUSTOMERS = (
    "PSID_222", "PSID_555", "PSID_556", "PSID_901", "PSID_903", "PSID_904", "39333000111",
)
# The Facebook and Instagram comments they write.
SAMPLE_COMMENTS = ("POST_9_CMT_7", "c_101")
# The X users who write and the posts that mention the brand.
SAMPLE_X_USERS = ("1234567890000000077", "1234567890000000902")
SAMPLE_X_POSTS = ("1862000000000000201", "1862000000000000502")
# The Telegram messages they write: (private chat id, message id).
SAMPLE_TELEGRAM_MESSAGES = ((777, 601),)


def accounts() -> dict[str, dict[str, str]]:
    """Credentials of the example coverage's accounts (``examples/coverage.yaml``), for the fakes."""
    return {
        "acme.it.facebook": {"page_id": "PAGE_111", "access_token": GRAPH_TOKEN},
        # An Instagram account answers through the Facebook Page linked to it.
        "acme.it.instagram": {"page_id": "PAGE_111", "access_token": GRAPH_TOKEN},
        "acme.it.whatsapp": {"phone_number_id": "PNID_5", "access_token": GRAPH_TOKEN},
        "acme_it_x": {"access_token": X_TOKEN},
        "acme.us.facebook": {"page_id": "PAGE_222", "access_token": GRAPH_TOKEN},
        "acme_us_x": {"access_token": X_TOKEN},
        "acme_it_bot": {"access_token": TELEGRAM_TOKEN},
    }


def environment(graph: str, x: str, telegram: str, smtp_port: int, chatwoot: str | None = None) -> dict[str, str]:
    """The settings that point the responders at the fakes, as environment variables."""
    desk = {} if chatwoot is None else {
        "OFFHOURS_RESPONDERS__CHATWOOT_URL": chatwoot,
        "OFFHOURS_RESPONDERS__CHATWOOT_TOKEN": CHATWOOT_TOKEN,
    }
    return {**desk,
        "OFFHOURS_RESPONDERS__GRAPH_BASE_URL": graph,
        "OFFHOURS_RESPONDERS__X_BASE_URL": x,
        "OFFHOURS_RESPONDERS__TELEGRAM_BASE_URL": telegram,
        "OFFHOURS_RESPONDERS__EGRESS_ALLOW": '["127.0.0.1"]',
        "OFFHOURS_RESPONDERS__SMTP_HOST": "127.0.0.1",
        "OFFHOURS_RESPONDERS__SMTP_PORT": str(smtp_port),
        "OFFHOURS_RESPONDERS__ACCOUNTS": orjson.dumps(accounts()).decode(),
    }


def meet_sample_customers(graph: FakeGraph, x: FakeX, telegram: FakeTelegram, at: datetime) -> None:
    """Make the sample customers, comments, posts and chats known, as written at ``at``."""
    for customer in SAMPLE_CUSTOMERS:
        graph.add_customer(customer, at)
    for comment in SAMPLE_COMMENTS:
        graph.add_comment(comment, at)
    for user in SAMPLE_X_USERS:
        x.add_user(user)
    for post in SAMPLE_X_POSTS:
        x.add_tweet(post)
    for chat, message in SAMPLE_TELEGRAM_MESSAGES:
        telegram.add_message(chat, message, "private")


CHATWOOT_USER = 41
"""The fake desk's user offhours acts as (the holder of :data:`CHATWOOT_TOKEN`): a user of
its own, so that ``OFFHOURS_EDGE__CHATWOOT_OWN_SENDERS='["user:41"]'`` never hides a
person's reply."""


def sample_desk() -> FakeChatwoot:
    """The fake Chatwoot desk: account 1 (Acme), inbox 3 (a Facebook Page) with the user
    offhours acts as (41, whose token is :data:`CHATWOOT_TOKEN`) and agents 42 (Marta) and
    43 (Luca), the labels offhours uses, and conversation 10 with customer 14 (PSID_222),
    its reply window open."""
    desk = FakeChatwoot()
    desk.add_account(1, "Acme")
    desk.add_user(CHATWOOT_USER, "offhours", token=CHATWOOT_TOKEN, accounts=(1,))
    desk.add_user(42, "Marta Rossi", accounts=(1,))
    desk.add_user(43, "Luca Bianchi", accounts=(1,))
    desk.add_inbox(1, 3, "Acme Facebook", "Channel::FacebookPage", members=(CHATWOOT_USER, 42, 43))
    desk.add_labels(1, "offhours", "offhours-closed", "offhours-reduced", "offhours-open", "reduced", "closed", "urgent")
    desk.add_conversation(1, 10, inbox=3, contact=(14, "Ana Lopez"), source_id="PSID_222")
    return desk


def _port(base: int, offset: int) -> int:
    return base + offset if base else 0


async def serve(port_base: int, stopping: asyncio.Event) -> None:
    """Run every fake until ``stopping`` is set, printing where they are first."""
    async with contextlib.AsyncExitStack() as stack:
        graph = FakeGraph({GRAPH_TOKEN})
        x = FakeX({X_TOKEN})
        telegram = FakeTelegram({TELEGRAM_TOKEN})
        meet_sample_customers(graph, x, telegram, datetime.now(UTC))
        slack = FakeSlack()
        for offset, fake in enumerate((graph, x, telegram, slack)):
            await fake.start(_port(port_base, offset))
            stack.push_async_callback(fake.stop)
        smtp = await stack.enter_async_context(FakeSmtp(port=_port(port_base, 4)))
        chatwoot = sample_desk()
        await chatwoot.start(_port(port_base, 5))
        stack.push_async_callback(chatwoot.stop)
        print(f"fake Graph API (Messenger, Instagram, WhatsApp)  {graph.url}")
        print(f"fake X API                                        {x.url}")
        print(f"fake Telegram Bot API                             {telegram.url}")
        print(f"fake Slack incoming webhook                       {slack.webhook_url}")
        print(f"fake SMTP server                                  127.0.0.1:{smtp.port}")
        print(f"fake Chatwoot desk (account 1, conversation 10)   {chatwoot.url}")
        print(f"\n# known customers (last message: now): {', '.join(SAMPLE_CUSTOMERS)}; "
              f"comments: {', '.join(SAMPLE_COMMENTS)}; X users: {', '.join(SAMPLE_X_USERS)}; "
              f"X posts: {', '.join(SAMPLE_X_POSTS)}; Telegram chats: "
              f"{', '.join(str(chat) for chat, _ in SAMPLE_TELEGRAM_MESSAGES)}")
        print("\n# point `offhours run` at the fakes:")
        for name, value in environment(graph.url, x.url, telegram.url, smtp.port, chatwoot.url).items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"\n# staff notify URI for the coverage file: slack:{slack.webhook_url}")
        desk = "" if chatwoot.port == DEFAULT_PORT_BASE + 5 else f" --desk {chatwoot.url}"
        print(f"# the desk's customer writes (signed webhook to offhours): "
              f"python -m responders.fakes customer-writes{desk} 'Hi, where is my order?'")
        print("# every request received is logged below; Ctrl-C stops\n", flush=True)
        await stopping.wait()


WEBHOOK_SECRET_ENV = "OFFHOURS_EDGE__CHATWOOT_WEBHOOK_SECRET"
DEFAULT_WEBHOOK = "http://127.0.0.1:8080/webhooks/chatwoot"


async def _customer_writes(desk: str, account: int, conversation: int, text: str, webhook: str,
                           secret: str) -> tuple[int, bytes]:
    path = CONTROL_ROUTE.format(account=account, conversation=conversation)
    async with aiohttp.ClientSession() as session, session.post(
        desk.rstrip("/") + path, json={"content": text, "webhook": webhook},
        headers={CONTROL_SECRET_HEADER: secret}, timeout=aiohttp.ClientTimeout(total=30),
    ) as answer:
        return answer.status, await answer.read()


def customer_writes(args: argparse.Namespace) -> int:
    """``customer-writes``: the running fake desk's customer writes; print each webhook delivery.

    Exit 0 when every delivery was answered 2xx, 1 when one was not (or the desk could not
    be reached), 2 without a webhook secret.
    """
    secret = args.secret or os.environ.get(WEBHOOK_SECRET_ENV, "")
    if not secret:
        print(f"customer-writes: no webhook secret: set {WEBHOOK_SECRET_ENV} (load examples/local.env) "
              "or pass --secret", file=sys.stderr)
        return 2
    try:
        status, body = asyncio.run(_customer_writes(
            args.desk, args.account, args.conversation, args.text, args.webhook, secret))
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        print(f"customer-writes: cannot reach the fake desk at {args.desk} ({type(exc).__name__}): "
              "is `python -m responders.fakes` running?", file=sys.stderr)
        return 1
    if status != 200:
        print(f"customer-writes: the fake desk answered {status}: {body.decode('utf-8', 'replace')}",
              file=sys.stderr)
        return 1
    answer = orjson.loads(body)
    print(f"message {answer['message']} written by the customer of conversation {args.conversation} "
          f"(account {args.account})")
    ok = True
    for delivery in answer["deliveries"]:
        status = delivery["status"]
        ok = ok and status is not None and 200 <= status < 300
        said = f"{status} {delivery['answer']}" if status is not None else "no answer"
        print(f"{delivery['event']} -> {delivery['url']}: {said}")
    if not answer["deliveries"]:
        print("no webhook delivery (no --webhook?)")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m responders.fakes",
        description="Run the fake platforms on loopback and log every request they receive.",
        epilog=(
            "The fakes refuse customers who never wrote, as the platforms do. They start knowing "
            f"the sample customers of docs/fakes.md and examples/events.jsonl ({', '.join(SAMPLE_CUSTOMERS)}; "
            f"comments {', '.join(SAMPLE_COMMENTS)}; X users {', '.join(SAMPLE_X_USERS)}; Telegram chats "
            f"{', '.join(str(chat) for chat, _ in SAMPLE_TELEGRAM_MESSAGES)}), with their last message at the start "
            "time: 24-hour reply windows open from then."
        ),
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=DEFAULT_PORT_BASE,
        help=f"first of six consecutive ports (default {DEFAULT_PORT_BASE}; 0: free ports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    writes = commands.add_parser(
        "customer-writes",
        help="make the running fake Chatwoot desk's customer write; it posts the signed webhook",
        description=(
            "The customer of a conversation of the running fake Chatwoot desk writes TEXT. The desk "
            "then posts message_created (and any webhook queued since the last one, e.g. offhours' "
            "own messages and assignments) to --webhook, signed X-Chatwoot-Signature with the "
            f"secret, and this prints what offhours answered. The secret is ${WEBHOOK_SECRET_ENV} "
            "unless --secret is given. Exit 0 when every delivery got a 2xx answer, else 1."
        ),
    )
    writes.add_argument("text", help="what the customer writes")
    writes.add_argument("--desk", default=f"http://127.0.0.1:{DEFAULT_PORT_BASE + 5}",
                        help="the fake desk's URL, as printed at its start (default %(default)s)")
    writes.add_argument("--account", type=int, default=1, help="Chatwoot account (default %(default)s)")
    writes.add_argument("--conversation", type=int, default=10, help="conversation display id (default %(default)s)")
    writes.add_argument("--webhook", default=DEFAULT_WEBHOOK, help="offhours' Chatwoot webhook (default %(default)s)")
    writes.add_argument("--secret", default=None, help=f"the webhook secret (default: ${WEBHOOK_SECRET_ENV})")
    args = parser.parse_args(argv)
    if args.command == "customer-writes":
        return customer_writes(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("responders.fakes").setLevel(logging.INFO)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await serve(args.port_base, stopping)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
