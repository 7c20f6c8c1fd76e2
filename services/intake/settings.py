"""Settings of the intake service."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    max_request_records: int = Field(10_000, description="Most build records one POST may carry")
