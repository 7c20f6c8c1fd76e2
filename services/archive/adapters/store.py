"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes, their SHA-256, the SHA-256 of the VIN's
certificate stored before it (a hash chain per vehicle: all of a VIN's messages
share one partition, so its chain is written in order without a global lock)
and the signer certificate's fingerprint. Certificates are kept, never
replaced (domain.md: keep every issued version, ten years as the floor).

Every read is by ``_id``: FerretDB's SQLite backend pushes only ``_id``
equality down to SQL and answers any other filter by reading the whole
collection. So a certificate's ``_id`` is its record id (``VIN:revision``) and
``archive_heads`` keeps, per VIN, the newest revision stored.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

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
        head = await self.heads.find_one({"_id": document.vin})
        previous = head["sha256"] if head and head["revision"] < document.revision else None
        receipt = ArchiveReceipt(
            record_id=document.record_id,
            vin=document.vin,
            revision=document.revision,
            sha256=document.sha256,
            previous_sha256=previous,
            signer_fingerprint=document.signer_fingerprint or "",
            archived_at=now(),
        )
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
        await self._advance_head(receipt, head)
        return receipt

    async def _advance_head(self, receipt: ArchiveReceipt, head: dict[str, Any] | None) -> None:
        """Point the VIN's head at this certificate unless a newer one is there already.

        Done after the certificate is stored, so a crash in between leaves a
        head one behind that the redelivered message moves on. The comparison
        is made here, not in the filter: FerretDB answers a filter with more
        than ``_id`` by reading the whole collection. A VIN's messages come
        from one partition, one at a time.
        """
        if head is not None and head["revision"] >= receipt.revision:
            return
        await self.heads.replace_one(
            {"_id": receipt.vin},
            {"_id": receipt.vin, "revision": receipt.revision, "sha256": receipt.sha256},
            upsert=True,
        )

    async def get(self, vin: str, revision: int | None = None) -> dict[str, Any] | None:
        """A VIN's certificate of one revision, or its latest when revision is None."""
        if revision is None:
            head = await self.heads.find_one({"_id": vin})
            if head is None:
                return None
            revision = int(head["revision"])
        return await self.certificates.find_one({"_id": f"{vin}:{revision}"})


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
