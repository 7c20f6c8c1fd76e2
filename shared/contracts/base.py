"""Common base of every contract: frozen, no unknown fields, a schema version."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Contract(BaseModel):
    """Frozen pydantic model that refuses unknown fields (a typo is an error, not a silent drop)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def printable(value: str) -> str:
    """Text shown as a name and used as a key (a release group): no control characters.

    A NUL or a form feed cannot be carried in an HTML attribute, so the board
    could not show such a group, nor a person type it.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    return value


Printable = Annotated[str, AfterValidator(printable)]
