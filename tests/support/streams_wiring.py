"""What ``tests/integration/streams/test_delivery_e2e.py`` and ``tests/integration/streams/test_retention.py`` and ``tests/integration/streams/test_wiring.py`` share (they were one module, tests/streams/test_wiring.py).
"""

from __future__ import annotations

TOKEN = "EAAG-wiring-token"


# With two members from 2026-11-02, weekly: marta, luca, marta, then luca from Monday 23rd 09:00.

COVERAGE = """\
teams:
  care-it:
    name: Assistenza Italia
    timezone: Europe/Rome
    locale: it
    accounts: [acme.it.facebook]
    hours:
      mon-fri: ["09:00-19:00 open", "19:00-24:00 reduced"]
    on_call:
      rotation: {{members: [marta, luca], start: "2026-11-02 09:00", every: 1w}}
    staff:
      marta: {{name: Marta Rossi, notify: ["slack:{slack}"]}}
      luca:  {{name: Luca Bianchi, notify: ["slack:{slack}"]}}
"""

