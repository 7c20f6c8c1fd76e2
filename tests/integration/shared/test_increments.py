"""Counters moved through ``shared.increments`` on the local FerretDB: every move counted once, in few requests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.increments import LEASES, Increments, WriterLease
from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings


class CountingBulks:
    """The collection, counting the bulk requests made through it."""

    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection, self.bulks = collection, 0
        self.database, self.name = collection.database, collection.name

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
    """Each process creates the counters it has not seen; the second finds them made and moves them."""
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


async def moving_one_by_one(increments: Increments, moves: int) -> None:
    for _ in range(moves):
        await increments.move({"shared": 1})


async def test_two_processes_moving_one_counter_at_once_lose_no_move(
    settings: CocSettings, test_db: AsyncDatabase[MongoDoc]
) -> None:
    """Two clients (as two status instances) move one counter 2 x 80 times at once: it ends at 160.

    On FerretDB an update is a read and a write: without turns, moves made at the same
    instant by the two were lost (the same test with 2 x 150 ended at 272 of 300).
    """
    other_client = make_client(settings)
    try:
        first = Increments(test_db["counts"])
        second = Increments(other_client[test_db.name]["counts"])
        await asyncio.gather(moving_one_by_one(first, 80), moving_one_by_one(second, 80))
    finally:
        await other_client.close()

    assert (await counts(test_db["counts"]))["shared"] == 160
    assert await test_db[LEASES].count_documents({}) == 0  # every turn given back


async def test_a_lease_left_by_a_dead_writer_is_taken_over_once_it_ran_out(
    test_db: AsyncDatabase[MongoDoc],
) -> None:
    leases = test_db[LEASES]
    await leases.insert_one({"_id": "coc.counts", "holder": "killed", "until": time.time() + 0.5})
    lease = WriterLease(leases, "coc.counts")

    began = time.monotonic()
    async with lease.held():
        waited = time.monotonic() - began
        held = await leases.find_one({"_id": "coc.counts"})

    assert 0.4 < waited < 5, f"took the lease after {waited:.2f}s"
    assert held is not None and held["holder"] != "killed"
    assert await leases.count_documents({}) == 0
