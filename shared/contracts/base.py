"""Common base of every contract: frozen, no unknown fields, a schema version."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Frozen pydantic model that refuses unknown fields (a typo is an error, not a silent drop)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
