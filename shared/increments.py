"""Counter documents moved by ``$inc``, every move waiting at one moment written in one request.

Counters are small documents by ``_id`` (the board's tallies, the archive's
certificates per approval version), moved by the change a batch makes. Written
as one ``update_one`` per counter, a batch touching sixty counters cost the
server sixty transactions: in a 20,000-build run, status's 1,952 single ``$inc``
requests and the archive's 2,200 took FerretDB more CPU than the certificates
themselves (measured with a command listener, 2026-12-07). Here a move adds its
change to what is pending and the pending changes go in one unordered bulk of
upserts; moves arriving while one is written are merged and go together in the
next. One bulk at a time per collection and process, so two ``$inc`` of one
document are never in flight at once (on FerretDB an update is a read and a
write, and two at once lose one, see ``shared.mongo``).

A move returns once its change is written, with the write's error if it
failed; a change is never written twice.

Between processes (two status or archive instances) MongoDB's ``$inc`` is atomic,
but FerretDB 1.24 reads and writes the document in two steps, so two processes
moving one counter at once lose moves (three processes x 100 ``$inc`` of one
document ended at 177; two status instances' board off by dozens in a fault run).
There the bulks of all processes take turns: each writes under a lease
(``WriterLease``: a document of ``increment_leases`` inserted with a unique ``_id``,
which FerretDB enforces in one step, and deleted after the write). On MongoDB no
lease is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.mongo import MongoDoc, insert_new, serves_secondary_indexes

KNOWN = 100_000  # counters a process remembers exist (then it forgets them all and learns again)
LEASES = "increment_leases"  # one document per counter collection while a process writes it (FerretDB)
LEASE_S = 15.0  # far longer than a bulk of counters takes; how long a dead writer holds the others up
TURN_WAIT_S = (0.01, 0.2)  # the first and the longest wait between tries for a lease another holds

log = logging.getLogger(__name__)


class Increments:
    """``$inc`` of ``field`` on the documents of ``collection``, batched as the class docstring says."""

    def __init__(
        self, collection: AsyncCollection[MongoDoc], field: str = "n", *, take_turns: bool | None = None
    ) -> None:
        """``take_turns``: whether processes take turns to write (None: when the server is FerretDB)."""
        self.collection, self.field = collection, field
        self._take_turns = take_turns
        self._lease: WriterLease | None = None
        self._pending: dict[str, int] = {}
        self._sets: dict[str, MongoDoc] = {}
        self._waiting: list[asyncio.Future[None]] = []
        self._writing = asyncio.Lock()
        self._known: set[str] = set()  # counters this process knows exist (``_create``)

    async def move(self, change: Mapping[str, int], sets: Mapping[str, MongoDoc] | None = None) -> None:
        """Move each counter by its change (``sets``: fields set on a counter's document as well)."""
        change = {key: n for key, n in change.items() if n}
        if not change:
            return
        for key, n in change.items():
            self._pending[key] = self._pending.get(key, 0) + n
        for key, fields in (sets or {}).items():
            if key in change:
                self._sets[key] = dict(fields)
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(written)
        async with self._writing:
            if not written.done():  # else an earlier writer took this change with its own
                await self._write_pending()
        await written

    async def _write_pending(self) -> None:
        change, sets, waiting = self._pending, self._sets, self._waiting
        self._pending, self._sets, self._waiting = {}, {}, []
        try:
            await self._write({key: n for key, n in change.items() if n}, sets)
        except BaseException as exc:  # each mover gets the error of the write that carried its change
            failure = (
                exc if isinstance(exc, Exception) else ConnectionError("the counters' write was cancelled")
            )
            for future in waiting:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for future in waiting:
            if not future.done():
                future.set_result(None)

    async def _write(self, change: Mapping[str, int], sets: Mapping[str, MongoDoc]) -> None:
        if not change:
            return
        async with self._turn():
            await self._create([key for key in change if key not in self._known], sets)
            await self._bulk(change, sets)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """This process's turn to write the collection's counters (at once where ``$inc`` is atomic)."""
        if self._take_turns is None:
            self._take_turns = not await serves_secondary_indexes(self.collection.database.client)
        if not self._take_turns:
            yield
            return
        if self._lease is None:
            database = self.collection.database
            self._lease = WriterLease(database[LEASES], f"{database.name}.{self.collection.name}")
        async with self._lease.held():
            yield

    async def _bulk(self, change: Mapping[str, int], sets: Mapping[str, MongoDoc]) -> None:
        await self.collection.bulk_write(
            [
                UpdateOne({"_id": key}, self._update(n, sets.get(key)), upsert=True)
                for key, n in change.items()
            ],
            ordered=False,
        )

    async def _create(self, keys: list[str], sets: Mapping[str, MongoDoc]) -> None:
        """Counters this process has not seen yet, inserted at zero first (those that exist are refused).

        So the bulk of ``$inc`` never creates a document: two processes upserting one new
        counter at once make one of them fail with a duplicate key, which FerretDB answers
        in a form the driver cannot read (no ``nModified``), leaving unknown which moves of
        the bulk were made.
        """
        if not keys:
            return
        if len(self._known) + len(keys) > KNOWN:
            self._known.clear()
        await insert_new(self.collection, [{"_id": key, self.field: 0, **sets.get(key, {})} for key in keys])
        self._known.update(keys)

    def _update(self, n: int, fields: MongoDoc | None) -> dict[str, Any]:
        update: dict[str, Any] = {"$inc": {self.field: n}}
        if fields:
            update["$set"] = fields
        return update


class WriterLease:
    """One writer at a time among processes, for a server whose updates are a read and a write.

    The lease is a document inserted with the name as ``_id``: a unique key is enforced in one
    step on FerretDB too, so one insert wins. The holder deletes it after its write; a lease
    whose holder died (never deleted) is taken over once ``until`` (the holder's clock plus
    ``lease_s``) has passed, so a killed writer holds the others up for ``lease_s`` at most.
    The takeover deletes only that holder's lease, by its token.
    """

    def __init__(self, leases: AsyncCollection[MongoDoc], name: str, lease_s: float = LEASE_S) -> None:
        self.leases, self.name, self.lease_s = leases, name, lease_s

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        await self._take(token)
        try:
            yield
        finally:
            # shielded: a cancelled writer still frees the lease (else the others wait out lease_s)
            await asyncio.shield(self.leases.delete_one({"_id": self.name, "holder": token}))

    async def _take(self, token: str) -> None:
        wait = TURN_WAIT_S[0]
        while True:
            try:
                await self.leases.insert_one(
                    {"_id": self.name, "holder": token, "until": time.time() + self.lease_s}
                )
                return
            except DuplicateKeyError:
                held = await self.leases.find_one({"_id": self.name})
            if held is not None and float(held.get("until", 0)) < time.time():
                log.warning("%s: the lease of a writer gone for %.0fs is taken over", self.name, self.lease_s)
                await self.leases.delete_one({"_id": self.name, "holder": held.get("holder")})
                continue
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, TURN_WAIT_S[1])
