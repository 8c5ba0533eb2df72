"""What ``tests/component/responders/test_fakes_refuse.py`` and ``tests/unit/responders/test_fakes_refuse.py`` share (they were one module, tests/responders/test_fakes_refuse.py).
"""

from __future__ import annotations

TOKEN = "EAAG-refusal-token"


BOT_TOKEN = "6123450000:AAHfake-refusal-token"


# Telegram: a customer's private chat and a supergroup (int64 ids, messages by int id).
PRIVATE_CHAT = 6123456789


SUPERGROUP = -1001234567890


# Graph: customers (PSID, IGSID, wa_id) and comments, by how long ago they wrote.
PSID = "24680135791357913"

