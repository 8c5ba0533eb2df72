"""What ``tests/component/edge_ops/test_one_validation.py`` and ``tests/unit/edge_ops/test_one_validation.py`` share (they were one module, tests/edge_ops/test_one_validation.py).
"""

from __future__ import annotations

import pytest

from tests.support.ops import COVERAGE_TEXT

US_TAIL = "    holidays: {country: US}\n"
assert COVERAGE_TEXT.endswith(US_TAIL)


def _us_template(kind: str, source: str) -> str:
    return COVERAGE_TEXT + f"    triage:\n      templates:\n        en:\n          {kind}: \"{source}\"\n"


# (coverage text, line, the problem as the file check prints it after "FILE:LINE: ")
CASES = [
    pytest.param(
        COVERAGE_TEXT.replace('"mailto:luca@example.com"', '"sms:+390612345678"'), 25,
        "team 'care-it', staff 'luca', 'notify': 'sms:' is not a notify scheme; "
        "write one of 'slack', 'teams', 'mailto', 'webhook', 'telegram', "
        "e.g. 'mailto:marta@example.com' or 'slack:https://hooks.slack.com/...'",
        id="unknown_notify_scheme",
    ),
    pytest.param(
        _us_template("dm", "Hi {{ first_name }}, order {{ order_number }} is with us"), 37,
        "team 'care-us', 'triage', 'templates' 'en', 'dm': unknown variable 'order_number'; use one of "
        "team_name, mode, reply_within_minutes, reply_by, next_open, staff_name, evening, paged, first_name",
        id="unknown_template_variable",
    ),
    pytest.param(
        _us_template("public", "Thanks {{ first_name }}, write to us privately"), 37,
        "team 'care-us', 'triage', 'templates' 'en', 'public': a public template cannot use 'first_name' "
        "(a public reply repeats nothing personal); leave the customer's name out of public templates; use it in 'dm'",
        id="customer_name_in_a_public_template",
    ),
]

