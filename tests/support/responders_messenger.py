"""What ``tests/component/responders/test_messenger.py`` and ``tests/unit/responders/test_messenger.py`` share (they were one module, tests/responders/test_messenger.py).
"""

from __future__ import annotations

from typing import Any

from records.wire import AckRequest
from responders.config import AccountCredentials, ResponderSettings
from responders.fakes.samples import ack_request, fixed_clock
from responders.messenger import (
    MessengerSender,
)

TOKEN = "EAAG-test-page-token"


CLOCK = fixed_clock()


FB_COMMENT = "POST_9_CMT_7"


def sender(base_url: str = "http://127.0.0.1:9") -> MessengerSender:
    settings = ResponderSettings(
        graph_base_url=base_url,
        egress_allow=("127.0.0.1",),
        accounts={
            "acme.it.facebook": AccountCredentials(page_id="PAGE_111", access_token=TOKEN),
            "acme.it.instagram": AccountCredentials(access_token=TOKEN),
        },
    )
    return MessengerSender(settings, CLOCK)


def comment(public: bool, **changes: Any) -> AckRequest:
    """A Facebook comment acknowledgment: public under the comment, or private to its author."""
    fields: dict[str, Any] = {"kind": "comment", "reply_to": FB_COMMENT, "recipient": "USER_333", "public": public}
    return ack_request(**{**fields, **changes})

