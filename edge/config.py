"""Settings of the HTTP edge (webhook secrets, API tokens, link signing).

A plain pydantic model nested in ``streams.settings.Settings`` as ``edge``;
environment variables use the ``OFFHOURS_EDGE__`` prefix.
"""

from __future__ import annotations

from pydantic import BaseModel


class EdgeSettings(BaseModel):
    """Placeholder: filled in by the HTTP edge work."""
