"""MongoDB client factory (PyMongo's asyncio API, the successor of motor).

Writes and queries stay within what FerretDB and MongoDB both do: no
transactions, no change streams, only $sum/$count in $group (design.md).
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import CocSettings

MongoDoc = dict[str, Any]


def make_client(settings: CocSettings, **options: Any) -> AsyncMongoClient[MongoDoc]:
    """A client for settings.mongo_url; the caller closes it (in its lifespan)."""
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("tz_aware", True)
    return AsyncMongoClient(settings.mongo_url, **options)


def database(client: AsyncMongoClient[MongoDoc], settings: CocSettings) -> AsyncDatabase[MongoDoc]:
    return client[settings.mongo_db]


async def serves_secondary_indexes(client: AsyncMongoClient[MongoDoc]) -> bool:
    """Whether the server uses secondary indexes for queries.

    FerretDB 1.x on SQLite answers every filter but ``_id`` equality by reading
    the whole collection, so a non-unique secondary index there only makes
    each write dearer. Unique indexes are created everywhere: they enforce
    identity, not speed.
    """
    info = await client.admin.command("buildInfo")
    return "ferretdbVersion" not in info
