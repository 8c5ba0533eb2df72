"""Which events the webhooks report as "no coverage account": those no team of the coverage in force lists.

The README's generic-webhook step posts the first line of ``examples/events.jsonl``
(channel ``facebook``, account ``acme.it.facebook``) with no ``OFFHOURS_EDGE__ACCOUNTS``
mapping; the shipped coverage lists that account, so nothing may be reported.
"""

from __future__ import annotations

import pytest

from edge.config_store import ConfigDocument, MemoryConfigStore
from offhours.service import _known_account
from tests.support.edge_unknown_accounts import EXAMPLES, NOW


@pytest.fixture
def store() -> MemoryConfigStore:
    """The coverage in force: the shipped example, as the config topic would hold it."""
    return MemoryConfigStore((EXAMPLES / "coverage.yaml").read_text(encoding="utf-8"), clock=lambda: NOW)


async def test_the_coverage_in_force_decides(store: MemoryConfigStore) -> None:
    """An account added through the operations API is known at once; the wiring asks the store, not the file."""
    known = _known_account(store)
    before = known("acme.fr.facebook")
    text = store.current().yaml.replace("accounts: [acme.us.facebook, acme_us_x]",
                                        "accounts: [acme.us.facebook, acme_us_x, acme.fr.facebook]")
    await store.publish(ConfigDocument(yaml=text), expected_etag=None, who="ops:anna", what="test")
    assert (False, True) == (before, known("acme.fr.facebook"))


def test_no_coverage_yet_is_unknown() -> None:
    assert _known_account(MemoryConfigStore(clock=lambda: NOW))("acme.it.facebook") is None

