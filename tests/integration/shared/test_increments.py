"""Counters moved through ``shared.increments`` on the local FerretDB: every move counted once, in few requests."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.increments import Increments
from shared.mongo import MongoDoc


class CountingBulks:
    """The collection, counting the bulk requests made through it."""

    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection, self.bulks = collection, 0

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        self.bulks += 1
        return await self.collection.bulk_write(*args, **kwargs)

    async def insert_many(self, *args: Any, **kwargs: Any) -> Any:
        return await self.collection.insert_many(*args, **kwargs)


async def counts(collection: AsyncCollection[MongoDoc], field: str = "n") -> dict[str, int]:
    return {doc["_id"]: doc[field] async for doc in collection.find({})}


async def test_moves_made_at_once_are_all_counted_and_share_requests(
    test_db: AsyncDatabase[MongoDoc],
) -> None:
    counted = CountingBulks(test_db["counts"])
    increments = Increments(counted)  # type: ignore[arg-type]
    moves = [{"a": 1, "b": 2, f"own-{n}": 1} for n in range(60)]

    await asyncio.gather(*(increments.move(change) for change in moves))

    found = await counts(test_db["counts"])
    assert found["a"] == 60 and found["b"] == 120
    assert all(found[f"own-{n}"] == 1 for n in range(60))
    assert counted.bulks < 60 / 4, f"{counted.bulks} requests for 60 moves made at once"


async def test_a_process_moving_counters_another_created_counts_on_them(
    test_db: AsyncDatabase[MongoDoc],
) -> None:
    """Each process creates the counters it has not seen; the second finds them made and moves them.

    (Two processes moving one counter at the same instant lose one move on FerretDB, whose
    update is a read and a write; MongoDB's ``$inc`` is atomic. Status's recount repairs that.)
    """
    first, second = Increments(test_db["counts"]), Increments(test_db["counts"])

    for round_ in range(5):
        keys = {f"k{round_}-{n}": 1 for n in range(30)}  # new counters each round, unknown to both
        await first.move(keys)
        await second.move(keys)

    found = await counts(test_db["counts"])
    assert len(found) == 150
    assert set(found.values()) == {2}


async def test_fields_are_set_beside_the_count_and_a_net_zero_writes_nothing(
    test_db: AsyncDatabase[MongoDoc],
) -> None:
    increments = Increments(test_db["counts"], "count")

    await increments.move({"s1:A": 2, "s2:A": 1}, {"s1:A": {"approval_key": "A", "approval_sha256": "s1"}})
    await asyncio.gather(increments.move({"s2:A": -1}), increments.move({"s2:A": 1}), increments.move({}))

    s1 = await test_db["counts"].find_one({"_id": "s1:A"})
    assert s1 == {"_id": "s1:A", "count": 2, "approval_key": "A", "approval_sha256": "s1"}
    assert (await counts(test_db["counts"], "count"))["s2:A"] == 1
