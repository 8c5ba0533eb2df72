"""The promise-keeping tests' fixtures (tests/support/promises.py)."""

from tests.support.promises import care_it  # noqa: F401
