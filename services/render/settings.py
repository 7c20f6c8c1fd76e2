"""Settings of the render service: only what every service has, and the schema path."""

from __future__ import annotations

from shared.settings import ServiceSettings


class RenderSettings(ServiceSettings):
    """Render's settings (COC_ environment variables); the schema comes from ``ivi_xsd``."""
