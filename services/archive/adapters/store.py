"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes, their SHA-256, the SHA-256 of the VIN's
certificate stored before it (a hash chain per vehicle: all of a VIN's messages
share one partition, so its chain is written in order without a global lock)
and the signer certificate's fingerprint. Certificates are kept, never
replaced (domain.md: keep every issued version, ten years as the floor).
"""

from __future__ import annotations

from typing import Any

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
        earlier = [doc for doc in await self._of_vin(document.vin) if doc["revision"] < document.revision]
        previous = max(earlier, key=lambda doc: doc["revision"], default=None)
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
        return max(await self._of_vin(vin, full=True), key=lambda doc: doc["revision"], default=None)

    async def _of_vin(self, vin: str, full: bool = False) -> list[dict[str, Any]]:
        """Every certificate of a VIN (a handful). Filtered by equality only, sorted here:
        FerretDB's SQLite backend pushes an equality filter down to SQL but sorts by
        reading the whole collection, which grows with every certificate."""
        projection = {"_id": 0} if full else {"_id": 0, "revision": 1, "sha256": 1}
        return [doc async for doc in self.collection.find({"vin": vin}, projection)]


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
