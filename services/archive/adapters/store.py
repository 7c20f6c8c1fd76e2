"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes, their SHA-256, its link in the VIN's hash
chain (``services.archive.chain``) and the signer certificate's fingerprint.
Certificates are kept, never replaced (domain.md: keep every issued version,
ten years as the floor).

Every read is by ``_id`` (see ``shared.mongo``): a certificate's ``_id`` is its
record id (``VIN:revision``), and ``archive_heads`` keeps, per VIN, the head of
its chain.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.archive.chain import Head, advances, receipt_for
from shared.contracts.events import ArchiveReceipt, Document, now
from shared.mongo import MongoDoc

COLLECTION = "archive_certificates"
HEADS = "archive_heads"


class CertificateStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.certificates: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.heads: AsyncCollection[MongoDoc] = db[HEADS]

    async def setup(self) -> None:
        await self.certificates.create_index([("vin", 1), ("revision", 1)], unique=True)

    async def store(self, document: Document) -> ArchiveReceipt:
        """Store once; a redelivered document gets the receipt of the one already stored."""
        head = await self.head(document.vin)
        receipt = receipt_for(document, head, stored_time(now()))
        row = {
            **receipt.model_dump(mode="python"),
            "version_number": document.version_number,
            "xml": document.xml,
        }
        try:
            await self.certificates.insert_one({"_id": document.record_id, **row})
        except DuplicateKeyError:
            existing = await self.certificates.find_one({"_id": document.record_id})
            assert existing is not None
            receipt = receipt_of(existing)
        # After the certificate: a crash in between leaves the head one behind, and the
        # redelivered message moves it on. A VIN's messages come one at a time.
        if advances(head, receipt):
            await self.heads.replace_one(
                {"_id": receipt.vin},
                {"_id": receipt.vin, "revision": receipt.revision, "sha256": receipt.sha256},
                upsert=True,
            )
        return receipt

    async def head(self, vin: str) -> Head | None:
        """The head of the VIN's chain, if it has a certificate."""
        doc = await self.heads.find_one({"_id": vin})
        return Head(int(doc["revision"]), doc["sha256"]) if doc else None

    async def get(self, vin: str, revision: int | None = None) -> dict[str, Any] | None:
        """A VIN's certificate of one revision, or its latest when revision is None."""
        if revision is None:
            head = await self.head(vin)
            if head is None:
                return None
            revision = head.revision
        return await self.certificates.find_one({"_id": f"{vin}:{revision}"})


def stored_time(time: dt.datetime) -> dt.datetime:
    """``time`` as MongoDB keeps it (milliseconds), so a receipt given now equals the one read back later."""
    return time.replace(microsecond=time.microsecond // 1000 * 1000)


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
