"""Settings of the archive service: only what every service has (addresses, ports, retries)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class ArchiveSettings(ServiceSettings):
    """The archive's settings (COC_ environment variables)."""
