"""Documents on FerretDB through PyMongo's asyncio client."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from shared.mongo import database, make_client
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
