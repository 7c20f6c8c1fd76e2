"""The hash chain of a vehicle's certificates: pure rules, no database.

Every certificate records the SHA-256 of the certificate of the same VIN stored
before it, so the certificates of one vehicle form a chain in which a removed or
altered link shows. A VIN's messages share one partition, so its chain is
extended in order without a global lock; the head (the newest revision stored
and its hash) is all a new link needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.contracts.events import ArchiveReceipt, Document


@dataclass(frozen=True)
class Head:
    """The newest certificate stored for a VIN."""

    revision: int
    sha256: str
    revisions: tuple[int, ...] = ()  # every revision in the chain, oldest first


def receipt_for(document: Document, head: Head | None, archived_at: dt.datetime) -> ArchiveReceipt:
    """The receipt of ``document`` as the next link after ``head``.

    A document older than the head (a late redelivery) links to nothing: it is
    not the next link, and its own receipt is the one stored when it came first.
    """
    previous = head.sha256 if head is not None and head.revision < document.revision else None
    return ArchiveReceipt(
        record_id=document.record_id,
        vin=document.vin,
        revision=document.revision,
        sha256=document.sha256,
        previous_sha256=previous,
        signer_fingerprint=document.signer_fingerprint or "",
        archived_at=archived_at,
    )


def advances(head: Head | None, receipt: ArchiveReceipt) -> bool:
    """Whether the VIN's head moves to ``receipt``: only ever forward."""
    return head is None or head.revision < receipt.revision
