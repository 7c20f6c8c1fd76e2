"""Settings of the status service: only what every service has (addresses, ports, retries)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class StatusSettings(ServiceSettings):
    """The status service's settings (COC_ environment variables)."""
