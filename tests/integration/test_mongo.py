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
