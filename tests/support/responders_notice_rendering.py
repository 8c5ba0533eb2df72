"""What ``tests/component/responders/test_notice_rendering.py`` and ``tests/unit/responders/test_notice_rendering.py`` share (they were one module, tests/responders/test_notice_rendering.py).
"""

from __future__ import annotations

from typing import Any

from responders.fakes.samples import NOW, route_request
from responders.notice import Notice

MARKDOWN = "**Boss** [click here](https://evil.example) _now_"


HTML = "<script>alert(1)</script><a href='https://evil.example'>x</a>"


def notice(uri: str = "slack:https://hooks.slack.example/T1/B1/abc", **changes: Any) -> Notice:
    request = route_request([uri], **changes)
    return Notice(route=request, member=request.to[0], uri=uri, now=NOW, claim_url="https://offhours.example/c/1")

