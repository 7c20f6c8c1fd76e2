"""The newest registration of each approval holder's seal, as read from coc.seals.v1.

Signing seals with it, the workspace's seals page and ``coc seals list`` show
it; all keep it by ``shared.newest``'s rule. ``rows`` is what both lists show:
each seal with its days to expiry, a warning from 30 days on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts.seals import SealRegistration, holder_key
from shared.newest import Newest

EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class SealRow:
    """One holder's seal as a list shows it."""

    holder: str
    active: bool
    key: str  # "file /path" or "token label"
    subject: str
    serial: str  # hex
    fingerprint: str
    not_after: dt.datetime
    days_left: int
    set_by: str
    set_at: dt.datetime

    @property
    def warning(self) -> bool:
        """Whether it expires within the warning period (or has expired)."""
        return self.active and self.days_left <= EXPIRY_WARNING_DAYS


class SealTable(Newest[SealRegistration]):
    """Newest registration per holder (``shared.newest``'s rule)."""

    def __init__(self, changes: Iterable[SealRegistration] = ()) -> None:
        super().__init__(lambda change: change.key, changes)

    def get(self, holder: str) -> SealRegistration | None:
        return self.changes.get(holder_key(holder))

    def rows(self, now: dt.datetime) -> list[SealRow]:
        """Every holder's newest registration, soonest expiry first."""
        found = [row_of(change, now) for change in self.changes.values()]
        return sorted(found, key=lambda row: (not row.active, row.days_left, row.holder))


def row_of(change: SealRegistration, now: dt.datetime) -> SealRow:
    certificate = change.certificate
    key = f"file {change.key_file}" if change.key_file else f"token key {change.pkcs11_key}"
    return SealRow(
        holder=change.holder,
        active=change.active,
        key=key if change.active else "withdrawn",
        subject=certificate.subject.rfc4514_string(),
        serial=f"{certificate.serial_number:x}",
        fingerprint=change.fingerprint,
        not_after=certificate.not_valid_after_utc,
        days_left=change.days_left(now),
        set_by=change.set_by,
        set_at=change.set_at,
    )
