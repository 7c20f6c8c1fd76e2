"""The status_records collection: one document per VIN, the read model behind readiness and worklists.

A VIN's events come from one partition, so one status instance folds them at a
time, except around a consumer group rebalance. Within a process a per-VIN lock
makes read-fold-write one step; across processes the document's ``seq`` is
checked just before the write (the insert of a new VIN fails on the unique
``_id``), and a lost race folds the events again into what the other wrote.
Without transactions, and with a guarded replace being a read and a write
(see ``shared.mongo``), this is as strong as the guard could be.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.status.fold import OPEN_STATES, StatusRecord, StatusServiceError, fold
from shared.contracts.events import State, StatusEvent
from shared.contracts.findings import Owner
from shared.mongo import MongoDoc, serves_secondary_indexes

COLLECTION = "status_records"
MAX_ATTEMPTS = 20
CONCURRENT_VINS = 8  # VINs of one batch folded at once: their database round trips overlap
NO_GROUP = "unknown"  # readiness key of records whose group no event has told (e.g. rejected input)


class WriteConflict(StatusServiceError):
    """Other writers kept winning; the message is delivered again and folded once more."""


class StatusStore:
    """The read model, and beside it a slim index of it.

    Every lookup of a record is by ``_id``, the VIN (see ``shared.mongo``), and
    the readiness counts and worklists scan ``status_index``, whose documents are a few fields each,
    instead of the records with their timelines. The index entry is written
    before the record: a crash between the two leaves an entry one event ahead,
    which the redelivered event then writes into the record as well.
    """

    def __init__(
        self, collection: AsyncCollection[MongoDoc], index: AsyncCollection[MongoDoc] | None = None
    ) -> None:
        self.collection = collection
        self.index = index if index is not None else collection.database[f"{collection.name}_index"]
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def setup(self) -> None:
        """Indexes for the readiness counts and the worklist queries, where the server uses them."""
        if not await serves_secondary_indexes(self.collection.database.client):
            return
        for field in ("state", "owners", "group"):
            await self.index.create_index(field)

    async def apply(self, event: StatusEvent) -> StatusRecord | None:
        """Fold ``event`` into its VIN's record; the record as stored, or None when unchanged."""
        async with self._lock(event.vin):
            return await self._apply(event)

    def _lock(self, vin: str) -> asyncio.Lock:
        """One writer per VIN in this process.

        A conditional replace is a read and a write, not one atomic step (see
        ``shared.mongo``), so two writers guarded by the same ``seq`` can both
        succeed. Within a process this lock rules that out; across instances a
        VIN's events come from one partition, so only a rebalance can race.
        """
        lock = self._locks.get(vin)
        if lock is None:
            lock = self._locks[vin] = asyncio.Lock()
        return lock

    async def _apply(self, event: StatusEvent) -> StatusRecord | None:
        for _ in range(MAX_ATTEMPTS):
            current = await self.get(event.vin)
            new = fold(current, event)
            if new is None:
                return None
            if await self._write(current, new):
                return new
        raise WriteConflict(f"{event.record_id}: {MAX_ATTEMPTS} concurrent writes won before this one")

    async def apply_many(self, events: Sequence[StatusEvent]) -> int:
        """Fold a batch: each VIN read once and written at most once.

        Events of one VIN are folded in the order they came; a VIN whose write
        lost to another writer is folded again event by event. Returns the
        number of documents written.
        """
        by_vin: dict[str, list[StatusEvent]] = defaultdict(list)
        for event in events:
            by_vin[event.vin].append(event)
        limit = asyncio.Semaphore(CONCURRENT_VINS)

        async def one(vin: str, vin_events: list[StatusEvent]) -> int:
            async with limit, self._lock(vin):
                return await self._fold_vin(vin, vin_events)

        return sum(await asyncio.gather(*(one(vin, items) for vin, items in by_vin.items())))

    async def _fold_vin(self, vin: str, events: list[StatusEvent]) -> int:
        before = await self.get(vin)
        after = before
        for event in events:
            after = fold(after, event) or after
        if after is None or after is before:
            return 0
        if not await self._write(before, after):
            for event in events:
                await self._apply(event)
        return 1

    async def _write(self, current: StatusRecord | None, new: StatusRecord) -> bool:
        """Write ``new`` unless another writer changed the document since ``current`` was read."""
        await self.index.replace_one({"_id": new.vin}, index_entry(new), upsert=True)
        if current is None:
            try:
                await self.collection.insert_one(to_document(new))
            except DuplicateKeyError:
                return False
            return True
        # By ``_id`` alone, the guard checked here (see shared.mongo). The per-VIN lock makes read-fold-write one step within this process; a VIN's
        # events come from one partition, so only a rebalance puts two processes on it.
        stored = await self.collection.find_one({"_id": new.vin}, {"seq": 1})
        if stored is None or stored["seq"] != current.seq:
            return False
        await self.collection.replace_one({"_id": new.vin}, to_document(new))
        return True

    async def get(self, vin: str) -> StatusRecord | None:
        doc = await self.collection.find_one({"_id": vin})
        return from_document(doc) if doc is not None else None

    async def readiness(self) -> dict[str, Any]:
        """Records per state and per vehicle group and state ($group with $sum only, see shared.mongo)."""
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": {"state": "$state", "group": "$group"}, "n": {"$sum": 1}}}
        ]
        by_state: dict[str, int] = {state.value: 0 for state in State}
        by_group: dict[str, dict[str, int]] = defaultdict(dict)
        async for row in await self.index.aggregate(pipeline):
            state, group, count = row["_id"]["state"], row["_id"].get("group") or NO_GROUP, row["n"]
            by_state[state] = by_state.get(state, 0) + count
            by_group[group][state] = by_group[group].get(state, 0) + count
        return {"total": sum(by_state.values()), "by_state": by_state, "by_group": dict(by_group)}

    async def worklist(self, owner: Owner) -> list[MongoDoc]:
        """Records waiting for a person, with the findings ``owner`` must act on, by VIN."""
        cursor = self.index.find(
            {"state": {"$in": sorted(s.value for s in OPEN_STATES)}, "owners": owner.value}, {"_id": 1}
        )
        vins = sorted([entry["_id"] async for entry in cursor])
        items = []
        for vin in vins:
            record = await self.get(vin)
            if record is not None and record.waiting:
                items.append(work_item(record, owner))
        return items


def to_document(record: StatusRecord) -> MongoDoc:
    """The record as MongoDB keeps it: ``_id`` the VIN, times as dates."""
    return {"_id": record.vin, **record.model_dump()}


def from_document(doc: MongoDoc) -> StatusRecord:
    return StatusRecord.model_validate({key: value for key, value in doc.items() if key != "_id"})


def index_entry(record: StatusRecord) -> MongoDoc:
    """What readiness and worklists need of a record."""
    return {
        "_id": record.vin,
        "state": record.state.value,
        "group": record.vehicle_group,
        "owners": record.owners(),
    }


def work_item(record: StatusRecord, owner: Owner) -> MongoDoc:
    """A worklist entry: the record with only the findings ``owner`` must act on."""
    return {
        "vin": record.vin,
        "record_id": record.record_id,
        "revision": record.revision,
        "state": record.state.value,
        "vehicle_group": record.vehicle_group,
        "updated_at": record.updated_at,
        "findings": [f.model_dump(mode="json") for f in record.findings if f.owner is owner],
    }
