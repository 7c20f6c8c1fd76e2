"""Settings of the status service: what every service has, and how often the counters are recounted."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class StatusSettings(ServiceSettings):
    """The status service's settings (COC_ environment variables)."""

    status_recount_s: float = Field(
        600.0,
        gt=0,
        description="Seconds between two recounts of the readiness counters from the stored records "
        "(COC_STATUS_RECOUNT_S); one also runs at start",
    )
