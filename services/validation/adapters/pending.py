"""The validation_pending collection: one document per VIN, the newest revision seen and its state.

Records that wait (blocked, needs_review, held) are checked again when an
approval arrives or a reviewer decides; the newest revision also tells which
older deliveries to ignore.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.contracts import BuildRecord
from shared.contracts.events import State, now
from shared.mongo import MongoDoc

COLLECTION = "validation_pending"


class PendingStore:
    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        await self.collection.create_index([("approval_key", 1), ("waiting", 1)])

    async def newest_revision(self, vin: str) -> int:
        doc = await self.collection.find_one({"_id": vin}, {"revision": 1})
        return int(doc["revision"]) if doc else 0

    async def save(
        self, build: BuildRecord, state: State, waiting: bool, reviewed_by: str | None = None
    ) -> None:
        await self.collection.replace_one(
            {"_id": build.vin},
            {
                "_id": build.vin,
                "revision": build.revision,
                "state": state.value,
                "waiting": waiting,
                "approval_key": build.approval.key,
                "build": build.model_dump(mode="json"),
                "reviewed_by": reviewed_by,
                "updated_at": now(),
            },
            upsert=True,
        )

    async def get(self, vin: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": vin})

    async def waiting_on(self, approval_key: str) -> list[BuildRecord]:
        cursor = self.collection.find({"approval_key": approval_key, "waiting": True})
        return [BuildRecord.model_validate(doc["build"]) async for doc in cursor]
