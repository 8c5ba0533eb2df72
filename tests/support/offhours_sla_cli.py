"""What ``tests/component/offhours/test_sla_cli.py`` and ``tests/integration/offhours/test_sla_cli.py`` share (they were one module, tests/streams/test_sla_cli.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def _event(id: str, kind: str, at: str, conversation: str, account: str = "acme.it.facebook") -> str:
    return orjson.dumps(
        {
            "id": id, "account": account, "channel": "facebook", "kind": kind, "conversation": conversation,
            "author": {"id": "someone", "name": None, "followers": 10}, "text": "…", "lang": None,
            "at": at, "in_reply_to": None,
        }
    ).decode()


# Monday 2026-11-23. Rome is +01:00, New York -05:00.
EVENTS = [
    _event("a1", "dm", "2026-11-23T10:00:00+01:00", "fb:P:a"),
    _event("a2", "dm", "2026-11-23T10:10:00+01:00", "fb:P:a"),
    _event("a1", "dm", "2026-11-23T10:00:00+01:00", "fb:P:a"),
    _event("ar1", "agent_reply", "2026-11-23T10:40:00+01:00", "fb:P:a"),
    _event("a3", "dm", "2026-11-23T21:00:00+01:00", "fb:P:a"),
    _event("ar2", "agent_reply", "2026-11-23T22:30:00+01:00", "fb:P:a"),
    _event("b1", "comment", "2026-11-23T20:00:00+01:00", "fb:P:b", "acme_it_x"),
    "{this is not json",
    _event("br1", "agent_reply", "2026-11-23T20:20:00+01:00", "fb:P:b", "acme_it_x"),
    _event("x1", "dm", "2026-11-23T20:00:00+01:00", "tg:1", "acme.fr.telegram"),
    _event("c1", "dm", "2026-11-23T09:00:00-05:00", "fb:P:c", "acme.us.facebook"),
    _event("cr1", "agent_reply", "2026-11-23T09:05:00-05:00", "fb:P:c", "acme.us.facebook"),
]


TABLE = (
    "team     mode     count  median    p90  target  breaches\n"
    "care-it  open         1     40m    40m   2h00m         0\n"
    "care-it  reduced      2     20m  1h30m   1h00m         1\n"
    "care-us  open         1      5m     5m       -         0\n"
)


def offhours(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m offhours ARGS`` with no OFFHOURS_* settings but those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOURS_")}
    return subprocess.run(
        [sys.executable, "-m", "offhours", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, input=stdin, env={**clean, **(env or {})},
    )

