"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes, their SHA-256, the SHA-256 of the VIN's
certificate stored before it (a hash chain per vehicle: all of a VIN's messages
share one partition, so its chain is written in order without a global lock)
and the signer certificate's fingerprint. Certificates are kept, never
replaced (domain.md: keep every issued version, ten years as the floor).
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.contracts.events import ArchiveReceipt, Document, now
from shared.mongo import MongoDoc

COLLECTION = "archive_certificates"


class CertificateStore:
    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        await self.collection.create_index([("vin", 1), ("revision", 1)], unique=True)

    async def store(self, document: Document) -> ArchiveReceipt:
        """Store once; a redelivered document gets the receipt of the one already stored."""
        previous = await self.collection.find_one(
            {"vin": document.vin, "revision": {"$lt": document.revision}},
            {"sha256": 1},
            sort=[("revision", DESCENDING)],
        )
        receipt = ArchiveReceipt(
            record_id=document.record_id,
            vin=document.vin,
            revision=document.revision,
            sha256=document.sha256,
            previous_sha256=previous["sha256"] if previous else None,
            signer_fingerprint=document.signer_fingerprint or "",
            archived_at=now(),
        )
        try:
            await self.collection.insert_one(
                {
                    **receipt.model_dump(mode="python"),
                    "version_number": document.version_number,
                    "xml": document.xml,
                }
            )
        except DuplicateKeyError:
            existing = await self.get(document.vin, document.revision)
            assert existing is not None
            return receipt_of(existing)
        return receipt

    async def get(self, vin: str, revision: int | None = None) -> dict[str, Any] | None:
        """A VIN's certificate of one revision, or its latest when revision is None."""
        if revision is not None:
            return await self.collection.find_one({"vin": vin, "revision": revision}, {"_id": 0})
        return await self.collection.find_one({"vin": vin}, {"_id": 0}, sort=[("revision", DESCENDING)])


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
