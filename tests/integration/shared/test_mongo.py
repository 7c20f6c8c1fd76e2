"""Documents on FerretDB through PyMongo's asyncio client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymongo import DeleteMany, DeleteOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import MongoDoc, database, make_client
from shared.settings import CocSettings

pytestmark = pytest.mark.integration


async def test_document_written_is_read_back(settings: CocSettings, unique: str) -> None:
    client = make_client(settings)
    try:
        collection = database(client, settings)[f"test_docs_{unique}"]
        await collection.insert_one({"_id": "VIN1:1", "state": "archived", "revision": 1})
        found = await collection.find_one({"_id": "VIN1:1"})
        assert found == {"_id": "VIN1:1", "state": "archived", "revision": 1}
        await collection.drop()
    finally:
        await client.close()


async def test_unique_index_refuses_a_second_document_with_the_same_key(
    settings: CocSettings, unique: str
) -> None:
    client = make_client(settings)
    try:
        collection = database(client, settings)[f"test_unique_{unique}"]
        await collection.create_index([("vin", 1), ("revision", 1)], unique=True)
        await collection.insert_one({"vin": "VIN1", "revision": 1})
        await collection.insert_one({"vin": "VIN1", "revision": 2})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"vin": "VIN1", "revision": 1})
        assert await collection.count_documents({"vin": "VIN1"}) == 2
        await collection.drop()
    finally:
        await client.close()


async def test_lookup_by_id_uses_the_id_index(settings: CocSettings, unique: str) -> None:
    """Every hot path reads and writes by _id; on FerretDB's SQLite backend that is
    a full table scan unless our build's patch (deploy/local/build-ferretdb.sh) holds."""
    client = make_client(settings)
    try:
        db = database(client, settings)
        name = f"test_idx_{unique}"
        await db[name].insert_many([{"_id": f"VIN{i}:1", "n": i} for i in range(50)])
        explained = await db.command("explain", {"find": name, "filter": {"_id": "VIN7:1"}})
        if "ferretdbVersion" not in explained.get("serverInfo", {}):
            pytest.skip("the query plan checked here is FerretDB's")
        plan = " ".join(explained["queryPlanner"]["Plan"])
        assert "USING INDEX" in plan, plan
        assert explained["filterPushdown"] is True
        await db[name].drop()
    finally:
        await client.close()


@pytest.fixture
async def db(settings: CocSettings) -> AsyncIterator[AsyncDatabase[MongoDoc]]:
    client = make_client(settings)
    try:
        yield database(client, settings)
    finally:
        await client.close()


async def test_lookup_by_id_beside_other_keys_uses_the_id_index(
    db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    """A guarded write filters by ``_id`` and ``seq``: our build pushes the ``_id`` down then too."""
    name = f"test_idx_and_{unique}"
    await db[name].insert_many([{"_id": f"VIN{i}:1", "n": i} for i in range(50)])
    explained = await db.command("explain", {"find": name, "filter": {"_id": "VIN7:1", "n": 7}})
    if "ferretdbVersion" not in explained.get("serverInfo", {}):
        pytest.skip("the query plan checked here is FerretDB's")
    assert "USING INDEX" in " ".join(explained["queryPlanner"]["Plan"])
    assert await db[name].find_one({"_id": "VIN7:1", "n": 7}) == {"_id": "VIN7:1", "n": 7}
    assert await db[name].find_one({"_id": "VIN7:1", "n": 8}) is None  # the other key still counts
    await db[name].drop()


async def test_ids_in_a_list_are_read_with_every_other_condition_kept(
    db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    collection = db[f"test_in_{unique}"]
    await collection.insert_many([{"_id": f"VIN{i}", "n": i} for i in range(300)])
    wanted = [f"VIN{i}" for i in range(0, 300, 3)] + ["VIN-NONE"]
    found = [doc["_id"] async for doc in collection.find({"_id": {"$in": wanted}})]
    assert sorted(found) == sorted(wanted[:-1])
    odd = collection.find({"_id": {"$in": wanted}, "n": {"$mod": [2, 1]}})
    assert sorted([doc["n"] async for doc in odd]) == list(range(3, 300, 6))
    await collection.drop()


async def test_a_bulk_write_of_hundreds_of_statements_is_answered(
    db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    """FerretDB as shipped held each statement's query open and hung at the 100th (build-ferretdb.sh)."""
    collection = db[f"test_bulk_{unique}"]
    await collection.insert_many([{"_id": f"VIN{i}", "n": 0} for i in range(200)])
    statements = [ReplaceOne({"_id": f"VIN{i}", "n": 0}, {"n": i}, upsert=i >= 100) for i in range(300)]
    statements += [DeleteOne({"_id": "VIN5"}), ReplaceOne({"_id": "VIN6", "n": 99}, {"n": -1})]
    result = await asyncio.wait_for(collection.bulk_write(statements, ordered=False), 60)
    assert (result.matched_count, result.upserted_count, result.deleted_count) == (200, 100, 1)
    stored = {doc["_id"]: doc["n"] async for doc in collection.find({})}
    assert stored == {f"VIN{i}": i for i in range(300) if i != 5}  # VIN6's guard held: n is 6
    await collection.drop()


async def test_each_statement_of_a_bulk_update_sees_what_the_earlier_ones_wrote(
    db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    """The build writes an update command's documents in one transaction at its end (build-ferretdb.sh).

    A statement that reads a document an earlier one changed, by the same `_id`
    or by another filter, must see the change, as on MongoDB.
    """
    collection = db[f"test_bulk_reads_{unique}"]
    await collection.insert_many([{"_id": f"VIN{i}", "seq": 0, "g": "a"} for i in range(4)])
    result = await collection.bulk_write(
        [
            ReplaceOne({"_id": "VIN0", "seq": 0}, {"seq": 1, "g": "a"}),
            ReplaceOne({"_id": "VIN0", "seq": 1}, {"seq": 2, "g": "b"}),  # guard sees seq 1
            ReplaceOne({"_id": "VIN0", "seq": 1}, {"seq": 9, "g": "z"}),  # and now 2: refused
            UpdateOne({"_id": "VIN1"}, {"$set": {"g": "b"}}),
            UpdateMany({"g": "b"}, {"$inc": {"seq": 10}}),  # finds VIN0 and VIN1 as changed
            UpdateOne({"_id": "VIN2"}, {"$inc": {"seq": 1}}),
            UpdateOne({"_id": "VIN2"}, {"$inc": {"seq": 1}}),
        ],
        ordered=True,
    )
    assert (result.matched_count, result.modified_count) == (7, 7)
    stored = {doc["_id"]: (doc["seq"], doc["g"]) async for doc in collection.find({})}
    assert stored == {"VIN0": (12, "b"), "VIN1": (10, "b"), "VIN2": (2, "a"), "VIN3": (0, "a")}
    await collection.drop()


async def test_each_statement_of_a_bulk_delete_sees_what_the_earlier_ones_deleted(
    db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    collection = db[f"test_bulk_deletes_{unique}"]
    await collection.insert_many([{"_id": f"VIN{i}", "g": "a" if i < 3 else "b"} for i in range(6)])
    result = await collection.bulk_write(
        [
            DeleteOne({"_id": "VIN0"}),
            DeleteOne({"_id": "VIN0"}),  # already gone: deletes nothing
            DeleteOne({"_id": "VIN3"}),
            DeleteMany({"g": "b"}),  # VIN4 and VIN5, not VIN3 again
            DeleteOne({"_id": "VIN9"}),
        ],
        ordered=False,
    )
    assert result.deleted_count == 4
    assert sorted([doc["_id"] async for doc in collection.find({})]) == ["VIN1", "VIN2"]
    await collection.drop()
