"""IviVersionNumber: assigned once per record id and kept.

IviVersionNumber counts the certificates issued for a VIN: 1, then +1 per
corrected re-issue (guidelines 1.7, 1.12). A revision that never reaches render
takes no number; a redelivered record finds its number and gets it again.

Every read is by ``_id`` (see ``shared.mongo``): ``render_versions`` holds the
number of each record id, ``render_counters`` the last number given per VIN. The unique (vin, number)
index settles a race between two deliveries of different revisions.
"""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import MongoDoc, insert_new

COLLECTION = "render_versions"
COUNTERS = "render_counters"
READS_AT_ONCE = 64  # counters read (and raised) at once for a batch's later revisions
CLAIMS_KEPT = 100_000  # numbers claimed in bulk and not yet asked for (then forgotten: they are stored)


class VersionNumbers:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.versions: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.counters: AsyncCollection[MongoDoc] = db[COUNTERS]
        self._claimed: dict[str, int] = {}

    async def setup(self) -> None:
        await self.versions.create_index([("vin", 1), ("number", 1)], unique=True)

    async def claim_firsts(self, records: list[tuple[str, str]]) -> int:
        """A number for each (record id, VIN), the first record of its VIN in a batch, in few requests for all.

        Each is the VIN's first record of a batch (``Stage.consume``'s prepare).
        Number 1 for every VIN that has none yet, in two requests for all: the
        unique (vin, number) index refuses number 1 for a VIN that has it, and
        the ``_id`` a record id already numbered. Those refused are numbered as
        later revisions (``_claim_later``). Any left over (a record id numbered
        before, a race lost) take ``number_for``'s path of single requests. A
        VIN's first certificate, the common case, so costs no request of its
        own, and a correction two. Returns how many were claimed.
        """
        vins = dict(records)
        claimed = await insert_new(
            self.versions, [{"_id": record_id, "vin": vin, "number": 1} for record_id, vin in records]
        )
        # The counters after the numbers, as number_for writes them; a duplicate counter is at 1 or above.
        await insert_new(self.counters, [{"_id": vins[record_id], "last": 1} for record_id in claimed])
        numbers = dict.fromkeys(claimed, 1)
        numbers.update(await self._claim_later([(r, vin) for r, vin in records if r not in claimed]))
        if len(self._claimed) > CLAIMS_KEPT:
            self._claimed.clear()
        self._claimed.update(numbers)
        return len(numbers)

    async def _claim_later(self, records: list[tuple[str, str]]) -> dict[str, int]:
        """The next number of each VIN for its record id: counters read at once, numbers inserted in one request.

        As ``number_for`` does it one by one: the VIN's counter + 1, refused by the
        unique indexes when the record id has a number already or the counter
        is behind a number given (both left to ``number_for``), then the counter
        raised to the number given (never lowered). A VIN without a counter is left
        to ``number_for`` too.
        """
        if not records:
            return {}
        slots = asyncio.Semaphore(READS_AT_ONCE)

        async def counter_of(vin: str) -> MongoDoc | None:
            async with slots:
                return await self.counters.find_one({"_id": vin})

        counters = await asyncio.gather(*(counter_of(vin) for _record_id, vin in records))
        proposed = {
            record_id: (vin, int(counter["last"]) + 1, counter)
            for (record_id, vin), counter in zip(records, counters, strict=True)
            if counter is not None
        }
        given = await insert_new(
            self.versions,
            [{"_id": record_id, "vin": vin, "number": n} for record_id, (vin, n, _c) in proposed.items()],
        )

        async def count(vin: str, number: int, counter: MongoDoc) -> None:
            async with slots:
                await self._count(vin, number, counter)

        await asyncio.gather(*(count(*proposed[record_id]) for record_id in given))
        return {record_id: proposed[record_id][1] for record_id in given}

    async def number_for(self, record_id: str, vin: str) -> int:
        claimed = self._claimed.pop(record_id, None)
        if claimed is not None:
            return claimed
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
