"""Settings of the responders (platform credentials, endpoints, delivery policy).

A plain pydantic model nested in ``streams.settings.Settings`` as ``responders``;
environment variables use the ``OFFHOURS_RESPONDERS__`` prefix.
"""

from __future__ import annotations

from pydantic import BaseModel


class ResponderSettings(BaseModel):
    """Placeholder: filled in by the responders work."""
