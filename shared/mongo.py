"""MongoDB plumbing (PyMongo's asyncio API, the successor of motor), and what FerretDB allows.

The local MongoDB is FerretDB 1.24 (design.md, "Running it"). Every adapter
keeps to what it and MongoDB both do; the limits are explained here, once, and
each adapter says which one it handles with a "(see shared.mongo)".

- **Only ``_id`` equality is answered from an index.** FerretDB's SQLite
  backend pushes nothing else down to SQL: any other filter, sort or ``$in``
  reads and decodes the whole collection (1.3 s at 20,000 small documents,
  measured). So every hot read and write is by ``_id``; and a non-unique
  secondary index only makes writes dearer there (``serves_secondary_indexes``).
  Unique indexes are created everywhere: they enforce identity, not speed.
  The stack's build pushes the ``_id`` down also when the filter has other
  keys (``deploy/local/build-ferretdb.sh``, the server checks those on the one
  document found), so ``{"_id": v, "seq": n}`` is as cheap as ``{"_id": v}``:
  918 guarded replaces/s on 20,000 documents, where FerretDB as shipped reads
  the whole collection for each.
- **No transactions, and a guarded write is a read and a write.** A
  conditional ``replace_one`` is evaluated by FerretDB as a read and a write
  inside the server, not as one atomic step (on MongoDB it is one). Correctness comes from keys instead: a VIN's messages come
  from one partition, one at a time, so one writer per VIN at a time;
  deterministic ids make a repeated insert a ``DuplicateKeyError``.
- **Only ``$sum``/``$count`` in ``$group``**, evaluated in the server's memory,
  and no change streams.
- **Many statements in one ``bulk_write`` hang FerretDB as shipped**
  (../shared/ferretdb-measured.md): each statement's query stays open until the
  command ends, and the 100th waits for a connection forever. The stack's
  build closes each when it is done (``build-ferretdb.sh``), so bulk writes of
  replaces, upserts and deletes by ``_id`` work there as on MongoDB: 500
  upserts in one request, 1,100-1,250 statements/s against 800/s for single
  requests overlapped.
- **``$in`` on ``_id``** reads the whole collection on FerretDB as shipped; the
  stack's build answers up to 1,000 ids from the index: 12,300 documents/s
  against 2,000/s for ``find_one`` overlapped. Reads of many records by ``_id``
  use it.
- **One request costs the server about as much as the document it carries.**
  Measured here on a collection of 20,000: ``insert_one`` ~900/s, ``replace_one``
  by ``_id`` ~400-600/s, ``find_one`` by ``_id`` ~1,000/s, but ``insert_many`` of 50
  ~10,000 documents/s. So what is new goes in bulk (``insert_new``), each
  duplicate answered per document, and the few that already existed take
  the path of single requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import CocSettings

MongoDoc = dict[str, Any]
DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection[MongoDoc], docs: list[MongoDoc]) -> set[Any]:
    """Insert ``docs`` in one unordered request; the ``_id`` of each one inserted.

    A document refused as a duplicate (of its ``_id`` or of another unique
    index) is left out of the answer; any other refusal raises, after the rest
    were inserted (the caller's retry finds those as duplicates).
    """
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors) or exc.details.get(
            "writeConcernErrors"
        ):
            raise
        refused = {int(error["index"]) for error in errors}
        return {doc["_id"] for n, doc in enumerate(docs) if n not in refused}
    return {doc["_id"] for doc in docs}


def client_options(settings: CocSettings) -> dict[str, Any]:
    """The driver's options for the ``COC_MONGO_`` settings: how a replica set is written and read.

    They take precedence over the same options in ``mongo_url``. Measured against the local
    FerretDB 1.24 (``tests/integration/shared/test_mongo_options.py``): it accepts
    ``writeConcern`` and ``readConcern`` on every command and ignores them; it reports a
    standalone server, so the driver sends no read preference and no retryable-write numbers
    (those need a replica set), and TLS and users are only used when set.
    """
    concern = settings.mongo_write_concern
    options: dict[str, Any] = {
        "w": int(concern) if concern.isdigit() else concern,
        "readConcernLevel": settings.mongo_read_concern,
        "readPreference": settings.mongo_read_preference,
        "retryWrites": settings.mongo_retry_writes,
        "retryReads": settings.mongo_retry_reads,
        "serverSelectionTimeoutMS": 10_000,
        "tz_aware": True,
    }
    if settings.mongo_write_timeout_ms:
        options["wTimeoutMS"] = settings.mongo_write_timeout_ms
    if settings.mongo_tls or settings.mongo_tls_ca_file or settings.mongo_tls_cert_key_file:
        options["tls"] = True
        if settings.mongo_tls_ca_file:
            options["tlsCAFile"] = str(settings.mongo_tls_ca_file)
        if settings.mongo_tls_cert_key_file:
            options["tlsCertificateKeyFile"] = str(settings.mongo_tls_cert_key_file)
    if settings.mongo_username and settings.mongo_password_file:
        options["username"] = settings.mongo_username
        options["password"] = read_password(settings.mongo_password_file)
        options["authSource"] = settings.mongo_auth_source
        options["authMechanism"] = settings.mongo_auth_mechanism
    return options


def read_password(path: Path) -> str:
    """The first line of the password file, read when a client is made (never kept in settings)."""
    lines = path.read_text().splitlines()
    if not lines or not lines[0]:
        raise ValueError(f"mongo_password_file: {path} holds no password on its first line")
    return lines[0]


def make_client(settings: CocSettings, **options: Any) -> AsyncMongoClient[MongoDoc]:
    """The one way an adapter gets a client: settings.mongo_url with ``client_options``.

    ``options`` override them (a probe's shorter timeout); the caller closes the client (in its lifespan).
    """
    return AsyncMongoClient(settings.mongo_url, **{**client_options(settings), **options})


def make_sync_client(settings: CocSettings, **options: Any) -> MongoClient[MongoDoc]:
    """The same client for synchronous callers (the stack's probe, the tests' checks of the database)."""
    return MongoClient(settings.mongo_url, **{**client_options(settings), **options})


def database(client: AsyncMongoClient[MongoDoc], settings: CocSettings) -> AsyncDatabase[MongoDoc]:
    return client[settings.mongo_db]


async def serves_secondary_indexes(client: AsyncMongoClient[MongoDoc]) -> bool:
    """Whether the server uses secondary indexes for queries: MongoDB does, FerretDB 1.x does not."""
    info = await client.admin.command("buildInfo")
    return "ferretdbVersion" not in info
