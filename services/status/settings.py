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
        description="Least seconds a status event is held before it is folded (COC_STATUS_FOLD_INTERVAL_S): "
        "the events of a vehicle that arrive meanwhile are folded into one write of its record; at a "
        "line's pace the read model is written this often",
    )
    status_flood_vins: int = Field(
        1_000,
        ge=1,
        description="More vehicles than this with events held after the interval is a flood "
        "(COC_STATUS_FLOOD_VINS): the events are then held on, up to status_hold_max_s, so that one "
        "write of a record covers more of its events",
    )
    status_hold_max_s: float = Field(
        20.0,
        ge=0,
        le=300,
        description="Longest a status event is held under a flood (COC_STATUS_HOLD_MAX_S): how far the "
        "read model may fall behind the topic. 20,000 builds at once, 2026-12-06: 33,400 record writes "
        "at 20 s against 82,900 at 1 s",
    )
    status_hold_mb: float = Field(
        24.0,
        gt=0,
        le=512,
        description="Most status event bytes held, in MB (COC_STATUS_HOLD_MB); a status event is about "
        "350 bytes, so 24 MB holds about 68,000",
    )
    status_batch: int = Field(
        2_000,
        ge=1,
        le=50_000,
        description="Most status events taken from the broker in one poll (COC_STATUS_BATCH)",
    )
