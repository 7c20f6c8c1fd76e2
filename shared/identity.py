"""Which vehicle and revision a message is about, read from its key and its bytes alone.

Used when a message cannot be parsed with its contract (it goes to the DLQ) and
the status topic must still say which record failed. Pure: no driver, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.contracts.builds import MAX_REVISION

# A body read whole for its revision when its message is dead-lettered: every message the broker
# delivers with its default limit (1 MB); a larger one is not parsed, its revision stays unknown.
IDENTITY_BODY_MAX = 2_000_000
# VIN and revision of a message that broke its contract, read from its bytes and its key.
Identity = Callable[[bytes, str], tuple[str, int]]


def key_identity(body: bytes, key: str) -> tuple[str, int]:
    """The VIN is the key; the revision is the one the body names for that VIN, else 0 (not known).

    A record given up on after intake must be said failed at its own revision:
    the status fold ignores revision 0 for a VIN it already holds, so a failure
    said at 0 would leave the record ``received`` for ever. Every contract after
    intake names the revision: ``record_id`` ("VIN:revision") or ``build.revision``.
    """
    vin = key.upper()
    return vin, revision_in(body, vin)


def revision_in(body: bytes, vin: str) -> int:
    """The revision of ``vin`` that a JSON body names, or 0 when it is too large, garbage or silent.

    A bare ``revision`` is not read: a review carries one, and a review that
    breaks its contract does not make the record it names fail.
    """
    data = _json_object(body)
    record_id = data.get("record_id")
    if isinstance(record_id, str):
        named, _, number = record_id.rpartition(":")
        if named.upper() == vin and number.isascii() and number.isdigit() and len(number) <= 7:
            return _revision(int(number))
    build = data.get("build")
    if isinstance(build, dict) and str(build.get("vin", "")).upper() == vin:
        return _revision(build.get("revision"))
    return 0


def _json_object(body: bytes) -> dict[str, Any]:
    if len(body) > IDENTITY_BODY_MAX:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than Python's stack
        return {}
    return data if isinstance(data, dict) else {}


def _revision(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_REVISION:
        return value
    return 0
