"""Settings of the intake service."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    max_request_records: int = Field(10_000, description="Most build records one POST may carry")
    max_request_bytes: int = Field(
        32_000_000, ge=1_000, description="Largest request body, refused with 413 before it is parsed"
    )
    max_record_bytes: int = Field(
        900_000, ge=1_000, description="Largest accepted record, as published (the broker takes 1 MB)"
    )
