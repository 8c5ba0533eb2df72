"""Fake platforms: real local aiohttp servers on 127.0.0.1 speaking each wire format.

Each fake validates requests as the platform would (credentials, required fields and
their types, limits) and answers in the platform's own success and error shapes. Like
the platform, it only reaches who wrote first: a test tells it the customers, chats,
messages, comments and posts that exist (``FakeGraph.add_customer``/``add_comment``,
``FakeTelegram.add_message``, ``FakeX.add_user``/``add_tweet``; the
Chatwoot desk's accounts, inboxes and conversations, ``FakeChatwoot.add_conversation``), and a send to anything
else, or outside the platform's reply window, is refused. A test tells it
to fail the next requests with :meth:`FakePlatform.fail_next` (``rate_limit``,
``server_error``, ``permanent``, ``ops_alert``) and waits for requests with
:meth:`FakePlatform.wait_for_requests` instead of sleeping. Used by the contract
tests, the benchmark and any test that needs a platform to talk to.
"""

from .base import FAILURE_KINDS, TRANSIENT_KINDS, Answered, FakePlatform, Recorded
from .chatwoot import FakeChatwoot
from .meta import CommentReply, FakeGraph
from .slack import FakeSlack
from .smtp import FakeSmtp
from .teams import FakeTeams
from .telegram import FakeTelegram
from .webhook import FakeWebhook
from .x import FakeX

__all__ = [
    "FAILURE_KINDS",
    "TRANSIENT_KINDS",
    "Answered",
    "CommentReply",
    "FakeChatwoot",
    "FakeGraph",
    "FakePlatform",
    "FakeSlack",
    "FakeSmtp",
    "FakeTeams",
    "FakeTelegram",
    "FakeWebhook",
    "FakeX",
    "Recorded",
]
