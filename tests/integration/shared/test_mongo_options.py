"""The production client options (majority writes and reads, retries) against the local FerretDB 1.24.

FerretDB accepts a write and a read concern on each command and ignores them, and
reports a standalone server, so the driver sends neither retryable-write numbers nor a
read preference: the client every adapter gets works there as on a replica set.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import ReplaceOne, UpdateOne
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from shared.mongo import database, insert_new, make_client
from shared.settings import CocSettings

pytestmark = pytest.mark.integration


class Sent(CommandListener):
    """The commands the driver sent, as sent."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.commands.append({"name": event.command_name, **event.command})

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


async def test_every_write_carries_the_majority_concern_and_ferretdb_answers_it(
    settings: CocSettings, unique: str
) -> None:
    production = settings.model_copy(
        update={
            "mongo_write_concern": "majority",
            "mongo_read_concern": "majority",
            "mongo_retry_writes": True,
        }
    )
    sent = Sent()
    client = make_client(production, event_listeners=[sent])
    collection = database(client, production)[f"test_options_{unique}"]
    try:
        assert await insert_new(collection, [{"_id": "A", "n": 1}, {"_id": "B", "n": 1}]) == {"A", "B"}
        assert await insert_new(collection, [{"_id": "A", "n": 9}, {"_id": "C", "n": 1}]) == {"C"}
        await collection.update_one({"_id": "A"}, {"$inc": {"n": 1}})
        await collection.bulk_write(
            [ReplaceOne({"_id": "B"}, {"n": 5}, upsert=True), UpdateOne({"_id": "C"}, {"$set": {"n": 7}})]
        )
        before = await collection.find_one_and_update({"_id": "C"}, {"$inc": {"n": 1}})
        assert before is not None and before["n"] == 7
        found = {doc["_id"]: doc["n"] async for doc in collection.find({})}
        assert found == {"A": 2, "B": 5, "C": 8}
        assert await collection.count_documents({"n": {"$gt": 2}}) == 2
    finally:
        await collection.drop()
        await client.close()
    writes = [c for c in sent.commands if c["name"] in ("insert", "update", "findAndModify")]
    assert writes and all(c["writeConcern"] == {"w": "majority", "wtimeout": 10_000} for c in writes)
    reads = [c for c in sent.commands if c["name"] in ("find", "aggregate")]
    assert reads and all(c["readConcern"] == {"level": "majority"} for c in reads)
    # A standalone server: the driver numbers no write for a retry, which FerretDB could not keep.
    assert not any("txnNumber" in c for c in writes)
