"""The render_versions collection: IviVersionNumber, assigned once per record id and kept.

IviVersionNumber counts the certificates issued for a VIN: 1, then +1 per
corrected re-issue (guidelines 1.7, 1.12). A revision that never reaches render
takes no number; a redelivered record finds its number here and gets it again.
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.mongo import MongoDoc

COLLECTION = "render_versions"


class VersionNumbers:
    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        await self.collection.create_index([("vin", 1), ("number", 1)], unique=True)

    async def number_for(self, record_id: str, vin: str) -> int:
        while True:
            existing = await self.collection.find_one({"_id": record_id})
            if existing is not None:
                return int(existing["number"])
            # Equality filter only, maximum taken here: FerretDB sorts by reading the whole collection.
            numbers = [int(doc["number"]) async for doc in self.collection.find({"vin": vin}, {"number": 1})]
            number = max(numbers, default=0) + 1
            try:
                await self.collection.insert_one({"_id": record_id, "vin": vin, "number": number})
            except DuplicateKeyError:
                continue  # another delivery took it or that number first: read again
            return number
