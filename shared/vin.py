"""The VIN (ISO 3779): its alphabet and its check digit. Domain knowledge, not a service's logic."""

from __future__ import annotations

# 17 characters, digits and capital letters without I, O and Q.
ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
# Check digit (position 9): letter values and position weights (domain.md, "VIN"; 49 CFR 565.15).
LETTER_VALUES = {
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(vin: str) -> str:
    """ISO 3779 check digit of a 17-character VIN: weighted sum mod 11, 10 written X."""
    total = sum(
        (int(char) if char.isdigit() else LETTER_VALUES[char]) * weight
        for char, weight in zip(vin, WEIGHTS, strict=True)
    )
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)
