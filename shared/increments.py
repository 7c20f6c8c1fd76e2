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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import MongoDoc, insert_new

KNOWN = 100_000  # counters a process remembers exist (then it forgets them all and learns again)


class Increments:
    """``$inc`` of ``field`` on the documents of ``collection``, batched as the class docstring says."""

    def __init__(self, collection: AsyncCollection[MongoDoc], field: str = "n") -> None:
        self.collection, self.field = collection, field
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
        await self._create([key for key in change if key not in self._known], sets)
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
