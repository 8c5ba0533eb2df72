"""The operations API tests' fixtures (tests/support/ops.py): a fixed clock in Rome, memory stores, a live app."""

from tests.support.ops import client, clock, signer, sink, store  # noqa: F401
