"""Default acknowledgment templates, ``<lang>.<kind>.j2`` (see :mod:`triage.acks`)."""
