"""What makes a password too easy to guess, after NIST SP 800-63B (section 3.1.1.2, "Password Verifiers").

SP 800-63B asks a verifier for at least a length (here 12 characters, the
caller's rule) and to refuse values that are commonly used, expected or
compromised: passwords from breach corpuses, repetitive or sequential
characters, context-specific words. It asks for no composition rules (no
"one digit, one capital"), and neither does this module.

The list of common passwords is the "passwords" frequency list of the zxcvbn
package (PyPI ``zxcvbn``, MIT licence): the 30,000 most frequent passwords of
Mark Burnett's corpus of leaked passwords, as Dropbox's zxcvbn ships it. It is
read on first use, not at import. Most of its entries are shorter than twelve
characters, so a password is also refused when it is one of them with a few
digits or symbols around it (``Password123!``): the first thing a guesser tries.

Pure: no web framework, no database; the rules are in ``weakness``.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Final

# Keyboard rows and the alphabet, read forward and backward and around the end
# (``7890123``): what a person types when asked for "twelve characters".
SEQUENCES: Final = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "1234567890qwertyuiopasdfghjklzxcvbnm",  # a QWERTY keyboard, row by row
    "1234567890azertyuiopqsdfghjklmwxcvbn",  # AZERTY
    "1234567890qwertzuiopasdfghjklyxcvbnm",  # QWERTZ
)
SHORT_BLOCK: Final = 4  # a block this long or shorter, repeated, is no password (abcabcabcabc)
FEW: Final = 6  # digits or symbols around a common password that still leave it common (a year and "!!")


def weakness(password: str) -> str | None:
    """Why ``password`` is too easy to guess, as the end of a sentence ("is …"), or None.

    Compared case-insensitively after Unicode NFKC, so ``QWERTYUIOPAS`` and
    ``ｑｗｅｒｔｙ…`` (full-width) fall to the same rules as ``qwertyuiopas``.
    """
    text = unicodedata.normalize("NFKC", password).casefold()
    if len(set(text)) == 1:
        return "one character repeated"
    if is_sequence(text):
        return "a simple sequence of letters, digits or keys (like abcdefghijkl, 123456789012 or qwertyuiop)"
    if repeated_block(text) is not None:
        return f"a block of at most {SHORT_BLOCK} characters repeated"
    if is_common(text):
        return (
            "on a list of common passwords (also when a few digits or symbols are added to one, "
            "or one is repeated)"
        )
    return None


def is_sequence(text: str) -> bool:
    """Whether ``text`` runs along one of ``SEQUENCES``, forward or backward, wrapping around its end."""
    if len(text) < 2:
        return False
    for sequence in SEQUENCES:
        laps = sequence * (len(text) // len(sequence) + 2)
        if text in laps or text in laps[::-1]:
            return True
    return False


def repeated_block(text: str) -> str | None:
    """The block of at most ``SHORT_BLOCK`` characters that ``text`` repeats (a last partial copy allowed), or None."""
    for size in range(1, min(SHORT_BLOCK, len(text) // 2) + 1):
        block = text[:size]
        if (block * (len(text) // size + 1))[: len(text)] == text:
            return block
    return None


def is_common(text: str) -> bool:
    """Whether ``text`` (case-folded) is a common password, one with a few digits or symbols added, or one repeated."""
    common = common_passwords()
    if text in common:
        return True
    core = text.strip("0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    added = len(text) - len(core)
    if core in common and (added <= FEW or is_sequence(text.replace(core, "", 1))):
        return True
    for copies in (2, 3):
        size, rest = divmod(len(core), copies)
        if not rest and size and core[:size] * copies == core and core[:size] in common:
            return True
    return False


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords of zxcvbn's "passwords" frequency list (30,000, lower case), read once."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # a pure-Python table; no network, no file

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])
