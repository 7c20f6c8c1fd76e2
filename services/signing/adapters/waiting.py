"""Documents waiting for their approval holder's seal (``SEAL_MISSING``), in MongoDB.

One document per VIN (``_id``), the newest revision rendered: a newer revision
replaces an older one, an older one never replaces a newer (the guarded upsert
meets the ``_id`` of the newer and is refused as a duplicate; see shared.mongo).
The collection holds only what waits, so reading a holder's waiting documents
when its seal is registered reads a small collection whole, which FerretDB does
anyway for any filter but ``_id``.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.contracts.events import Document
from shared.mongo import MongoDoc

COLLECTION = "signing_waiting"


class WaitingDocuments:
    """Rendered documents whose holder has no seal yet, kept until it has one."""

    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.docs: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.holders: set[str] = set()  # holders with documents waiting (this instance's view)

    async def setup(self) -> None:
        """Learn which holders have documents waiting (left by a run before this one)."""
        self.holders = {str(doc["holder"]) async for doc in self.docs.find({}, {"holder": 1})}

    async def keep(self, document: Document, holder: str) -> None:
        """Keep ``document`` until its holder has a seal (a newer revision of its VIN replaces it)."""
        doc = {
            "_id": document.vin,
            "revision": document.revision,
            "holder": holder,
            "since": dt.datetime.now(dt.UTC),
            "document": document.model_dump_json(),
        }
        self.holders.add(holder)
        # A newer revision of the VIN waiting already makes the upsert a duplicate: this one is superseded.
        with contextlib.suppress(DuplicateKeyError):
            await self.docs.replace_one(
                {"_id": document.vin, "revision": {"$lte": document.revision}}, doc, True
            )

    async def of_holder(self, holder: str) -> list[Document]:
        """The documents waiting for ``holder``'s seal."""
        return [
            Document.model_validate_json(doc["document"]) async for doc in self.docs.find({"holder": holder})
        ]

    async def every(self) -> list[Document]:
        """Every waiting document, in one read: what a hand-over of partitions filters (``Sealing.take_over``)."""
        return [Document.model_validate_json(doc["document"]) async for doc in self.docs.find({})]

    async def done(self, document: Document) -> None:
        """``document`` (or an older revision of its VIN) was sealed: it waits no more."""
        await self.docs.delete_one({"_id": document.vin, "revision": {"$lte": document.revision}})

    async def count(self) -> int:
        return await self.docs.count_documents({})
