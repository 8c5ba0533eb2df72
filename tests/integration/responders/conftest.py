"""The responders tests' fixtures (tests/support/serve.py): a client session, a real local server."""

from tests.support.serve import serve, session  # noqa: F401
