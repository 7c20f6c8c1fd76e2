"""Common base of every contract: frozen, no unknown fields, a schema version."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Contract(BaseModel):
    """Frozen pydantic model that refuses unknown fields (a typo is an error, not a silent drop)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# The punctuation a name may carry besides letters, digits and spaces: enough for plant names
# ("Győr (Body 2)"), model lines ("C-HR"), MES build ids ("D4-260706/0012") and approval
# numbers ("e4*2018/858*00123*01"); never < > " ' & or a control character, which only
# markup or a broken export puts in a name.
NAME_PUNCTUATION = " -_.,/()*+:#"


def name(value: str) -> str:
    """A name people and systems use as a key (plant, vehicle group, build id): an allow-list of characters.

    Names never go into the certificate's XML, but they travel in release
    evidence, on the status topic and as rows of the board: what is not a
    letter, a digit or one of ``NAME_PUNCTUATION`` is refused at the door.
    """
    refused = sorted({char for char in value if not (char.isalnum() or char in NAME_PUNCTUATION)})
    if refused:
        shown = " ".join(repr(char) if char.isprintable() else f"U+{ord(char):04X}" for char in refused[:5])
        raise ValueError(
            f"may hold only letters, digits, spaces and {NAME_PUNCTUATION.strip()}; found {shown}"
        )
    return value


Name = Annotated[str, AfterValidator(name)]
