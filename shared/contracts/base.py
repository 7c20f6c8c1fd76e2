"""Common base of every contract: frozen, no unknown fields, a schema version."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any

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


def text(value: str) -> str:
    """Free text a person writes (a comment, a reason): any character but a control character.

    Line breaks and tabs are text; an escape or a NUL is not, and would reach a
    terminal (``coc status``) or a page as it came. Markup is escaped where it is shown.
    """
    refused = sorted({char for char in value if _control(char) and char not in "\n\t"})
    if refused:
        raise ValueError(f"may not hold control characters; found {' '.join(_code(c) for c in refused[:5])}")
    return value


def person(value: str) -> str:
    """A person's name as actions carry it: text on one line, without markup characters."""
    refused = sorted({char for char in value if _control(char) or char in '<>"&'})
    if refused:
        shown = " ".join(_code(char) if _control(char) else repr(char) for char in refused[:5])
        raise ValueError(f'may not hold control characters or < > " &; found {shown}')
    return value


def _control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


Text = Annotated[str, AfterValidator(text)]
PersonName = Annotated[str, AfterValidator(person)]


def reason_of(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error as a person reads it: a validator's own words without pydantic's prefix."""
    return str(error["msg"]).removeprefix("Value error, ")
