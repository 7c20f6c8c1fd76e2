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
    status_fold_interval_s: float = Field(
        1.0,
        ge=0,
        le=30,
        description="Least seconds between two batches folded (COC_STATUS_FOLD_INTERVAL_S): the events "
        "of a vehicle that arrive meanwhile are folded into one write of its record",
    )
    status_batch: int = Field(
        2_000,
        ge=1,
        le=50_000,
        description="Most status events folded in one batch (COC_STATUS_BATCH); a batch is parsed whole, "
        "so this bounds the service's memory. 20,000 builds at once, 2026-12-06: with 2,000 status peaked "
        "at 110 MB and the read model was current 11 s after the pipeline was at rest (500: 120 MB, 25 s); "
        "a vehicle's events in one batch are folded in one write",
    )
