"""What ``tests/component/responders/test_mail.py`` and ``tests/unit/responders/test_mail.py`` share (they were one module, tests/responders/test_mail.py).
"""

from __future__ import annotations

from responders.fakes.samples import NOW, route_request
from responders.notice import Notice

CLAIM = "https://offhours.example/claim/route-fb-m_abc123?member=marta"


def notice(address: str) -> Notice:
    request = route_request([f"mailto:{address}"])
    return Notice(
        route=request, member=request.to[0], uri=f"mailto:{address}", now=NOW, claim_url=CLAIM
    )

