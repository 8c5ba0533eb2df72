"""What ``tests/component/offhours/test_sla_cli.py`` and ``tests/integration/offhours/test_sla_cli.py`` and ``tests/unit/promises/test_sla.py`` share (they were one module, tests/streams/test_sla.py).
"""

from __future__ import annotations

COVERAGE = """
teams:
  care-it:
    timezone: Europe/Rome
    accounts: [acme.it.facebook, acme_it_x]
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
      sat: ["10:00-18:00 reduced"]
    escalation:
      targets: {open: 2h, reduced: 1h, closed: 12h}
  care-us:
    timezone: America/New_York
    accounts: [acme.us.facebook]
    hours:
      daily: ["08:00-20:00 open", "20:00-02:00 reduced"]
"""

