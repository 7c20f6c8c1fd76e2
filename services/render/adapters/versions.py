"""IviVersionNumber: assigned once per record id and kept.

IviVersionNumber counts the certificates issued for a VIN: 1, then +1 per
corrected re-issue (guidelines 1.7, 1.12). A revision that never reaches render
takes no number; a redelivered record finds its number and gets it again.

Every read is by ``_id`` (see ``shared.mongo``): ``render_versions`` holds the
number of each record id, ``render_counters`` the last number given per VIN. The unique (vin, number)
index settles a race between two deliveries of different revisions.
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import MongoDoc

COLLECTION = "render_versions"
COUNTERS = "render_counters"


class VersionNumbers:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.versions: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.counters: AsyncCollection[MongoDoc] = db[COUNTERS]

    async def setup(self) -> None:
        await self.versions.create_index([("vin", 1), ("number", 1)], unique=True)

    async def number_for(self, record_id: str, vin: str) -> int:
        while True:
            existing = await self.versions.find_one({"_id": record_id})
            if existing is not None:
                number = int(existing["number"])
                await self._count(vin, number)  # in case a crash came between the two writes
                return number
            counter = await self.counters.find_one({"_id": vin})
            number = int(counter["last"]) + 1 if counter else 1
            try:
                await self.versions.insert_one({"_id": record_id, "vin": vin, "number": number})
            except DuplicateKeyError:
                # Another delivery took this record id, or the counter is behind a number
                # already given: count that number as used and look again.
                await self._count(vin, number)
                continue
            # The counter just read was below ``number``: write it at once (a new VIN inserts it).
            await self._count(vin, number, counter or {})
            return number

    async def _count(self, vin: str, number: int, counter: MongoDoc | None = None) -> None:
        """Raise the VIN's counter to ``number`` (never lower it).

        Read, compare, write by ``_id`` (see ``shared.mongo``); ``counter`` is the
        counter as the caller just read it (``{}`` for none), which saves the read.
        A VIN's records come from one partition, one at a time; a race of two
        deliveries is settled by the unique (vin, number) index above.
        """
        while True:
            if counter is None:
                counter = await self.counters.find_one({"_id": vin})
            known, counter = counter, None  # the next turn reads it again
            if known and int(known["last"]) >= number:
                return
            try:
                if known:
                    await self.counters.replace_one({"_id": vin}, {"_id": vin, "last": number})
                else:
                    await self.counters.insert_one({"_id": vin, "last": number})
                return
            except DuplicateKeyError:
                continue  # another delivery created the VIN's counter first: compare with it
