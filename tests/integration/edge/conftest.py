"""The edge tests' fixtures (tests/support/edge.py): a non-UTC local zone for every test, the embedded broker."""

from tests.support.edge import edge_broker, rome_local_time  # noqa: F401
