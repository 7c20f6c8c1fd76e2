"""The status read model in MongoDB: the records, a slim index of them, the waiting records, the counters.

Four collections, each keyed by ``_id`` so that every hot read and write is by
``_id`` (see ``shared.mongo``):

- ``status_records``: one document per VIN, the typed record with its timeline;
- ``status_records_index``: per VIN its state, group and time, what a recount reads;
- ``status_records_open``: per VIN waiting for a person, what a worklist shows;
- ``status_records_counts``: small counter documents (``services.status.tally``)
  moved by ``$inc`` as records are written, which the readiness board reads.

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
import datetime as dt
import logging
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.status.fold import StatusRecord, StatusServiceError, fold
from services.status.tally import (
    OPEN_VERSION,
    Tally,
    add,
    hour_key,
    in_window,
    minute_key,
    owner_keys,
    readiness_of,
    state_key,
    tally_change,
)
from services.status.worklist import OpenEntry, WorklistQuery, age_s, entries_by_owner, open_keys, select
from shared.contracts.events import State, StatusEvent
from shared.contracts.findings import Owner
from shared.mongo import MongoDoc, serves_secondary_indexes

COLLECTION = "status_records"
MAX_ATTEMPTS = 20
CONCURRENT_VINS = 8  # VINs of one batch folded at once: their database round trips overlap
CONCURRENT_LOOKUPS = 50  # reads by _id of one worklist page overlapped
RECOUNT_GRACE_S = 2.0  # longer than any writer takes from a record write to its counter update
WORKLIST_WAIT_S = 0.05  # how long a worklist request waits for a fresher view before serving the last one

log = logging.getLogger(__name__)


class WriteConflict(StatusServiceError):
    """Other writers kept winning; the message is delivered again and folded once more."""


class StatusStore:
    """The read model and the collections derived from it (see the module docstring)."""

    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection
        db, name = collection.database, collection.name
        self.index, self.open, self.counts = db[f"{name}_index"], db[f"{name}_open"], db[f"{name}_counts"]
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._writes = 0  # record writes begun in this process: a recount checks none began meanwhile
        self._unbumped = 0  # folds in this process whose counter change is not yet applied

    async def setup(self) -> None:
        """Indexes for the recount and the worklists, where the server uses them."""
        if not await serves_secondary_indexes(self.collection.database.client):
            return
        for field in ("state", "owners", "group"):
            await self.index.create_index(field)
        await self.open.create_index([("keys", 1), ("updated_at", 1)])

    # -- folding ----------------------------------------------------------------------------

    async def apply(self, event: StatusEvent) -> StatusRecord | None:
        """Fold ``event`` into its VIN's record; the record as stored, or None when unchanged."""
        self._unbumped += 1
        try:
            async with self._lock(event.vin):
                record, change = await self._apply(event)
            await self.bump(change)
        finally:
            self._unbumped -= 1
        return record

    def _lock(self, key: str) -> asyncio.Lock:
        """One writer per VIN (or per counter) in this process.

        A conditional replace is a read and a write, not one atomic step (see
        ``shared.mongo``), so two writers guarded by the same ``seq`` can both
        succeed. Within a process this lock rules that out; across instances a
        VIN's events come from one partition, so only a rebalance can race.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _apply(self, event: StatusEvent) -> tuple[StatusRecord | None, Tally]:
        for attempt in range(MAX_ATTEMPTS):
            current = await self.get(event.vin)
            new = fold(current, event)
            if new is None:
                if attempt and current is not None:
                    await self._derive(current)  # a lost writer may have left its derived documents
                return None, {}
            if await self._write(current, new):
                return new, tally_change(current, new)
        raise WriteConflict(f"{event.record_id}: {MAX_ATTEMPTS} concurrent writes won before this one")

    async def apply_many(self, events: Sequence[StatusEvent]) -> int:
        """Fold a batch: each VIN read once and written at most once, then the counters moved once.

        Events of one VIN are folded in the order they came; a VIN whose write
        lost to another writer is folded again event by event. The counters
        move by the sum of the changes of the records written, one ``$inc`` per
        counter, also when another VIN of the batch failed: its fault then
        propagates and the batch comes again, but the records already written
        fold to nothing then, so their change must not wait for it. Returns the
        number of documents written.
        """
        by_vin: dict[str, list[StatusEvent]] = defaultdict(list)
        for event in events:
            by_vin[event.vin].append(event)
        limit = asyncio.Semaphore(CONCURRENT_VINS)

        async def one(vin: str, vin_events: list[StatusEvent]) -> Tally | None:
            async with limit, self._lock(vin):
                return await self._fold_vin(vin, vin_events)

        self._unbumped += 1
        try:
            results = await asyncio.gather(
                *(one(v, items) for v, items in by_vin.items()), return_exceptions=True
            )
            change: Tally = {}
            for result in results:
                if isinstance(result, dict):
                    add(change, result)
            await self.bump(change)
        finally:
            self._unbumped -= 1
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if isinstance(result, dict))

    async def _fold_vin(self, vin: str, events: list[StatusEvent]) -> Tally | None:
        """The counters' change for the VIN's write, or None when nothing was written."""
        before = await self.get(vin)
        after = before
        for event in events:
            after = fold(after, event) or after
        if after is None or after is before:
            return None
        if await self._write(before, after):
            return tally_change(before, after)
        change: Tally = {}
        for event in events:
            add(change, (await self._apply(event))[1])
        return change

    async def _write(self, current: StatusRecord | None, new: StatusRecord) -> bool:
        """Write ``new`` unless another writer changed the document since ``current`` was read.

        The derived documents go first: a crash before the record write leaves
        them one event ahead, and the redelivered event, which folds to the same
        record, writes them again and then the record.
        """
        self._writes += 1
        await self._derive(new)
        if current is None:
            try:
                await self.collection.insert_one(to_document(new))
            except DuplicateKeyError:
                return False
            return True
        # By ``_id`` alone, the guard checked here (see shared.mongo).
        stored = await self.collection.find_one({"_id": new.vin}, {"seq": 1})
        if stored is None or stored["seq"] != current.seq:
            return False
        await self.collection.replace_one({"_id": new.vin}, to_document(new))
        return True

    async def _derive(self, record: StatusRecord) -> None:
        """The record's index entry and, while it waits for a person, its open entry (by ``_id``)."""
        await self.index.replace_one({"_id": record.vin}, index_entry(record), upsert=True)
        if record.waiting:
            await self.open.replace_one({"_id": record.vin}, open_entry(record), upsert=True)
        else:
            await self.open.delete_one({"_id": record.vin})

    # -- counters ---------------------------------------------------------------------------

    async def bump(self, change: Mapping[str, int]) -> None:
        """Move each counter by its change: one ``$inc`` by ``_id`` per counter, overlapped.

        Never a ``bulk_write`` of upserts (it can hang FerretDB, see
        ``shared.mongo``). Within the process one ``$inc`` per counter at a time.
        """

        async def one(key: str, n: int) -> None:
            async with self._lock(f"counter:{key}"):
                try:
                    await self.counts.update_one({"_id": key}, {"$inc": {"n": n}}, upsert=True)
                except DuplicateKeyError:  # another process created the counter first
                    await self.counts.update_one({"_id": key}, {"$inc": {"n": n}})

        await asyncio.gather(*(one(key, n) for key, n in change.items() if n))

    async def counters(self) -> Tally:
        """Every counter (a small collection: groups × states, owners, a day of time buckets)."""
        return {doc["_id"]: int(doc.get("n", 0)) async for doc in self.counts.find({})}

    async def readiness(self) -> dict[str, Any]:
        """The readiness board from the counters: no record is read."""
        return readiness_of(await self.counters(), dt.datetime.now(dt.UTC))

    async def recount(self, grace_s: float = RECOUNT_GRACE_S) -> bool:
        """Count again from the stored documents and correct the counters; False when writers were busy.

        Why: the counters move after the record is written, in a separate
        ``$inc`` (no transactions here). A crash between the two leaves the
        record written and the counters unmoved, and the redelivered events then
        fold to nothing, so no event would ever repair the count. The counters
        are a function of the stored documents, though (``tally``), so counting
        those again finds and corrects any drift.

        A correction is made only when no counter moved and this process began
        no write while the documents were read and ``grace_s`` after (longer than
        another process takes from its record write to its ``$inc``), and no fold
        of this process is still to move its counters: then the
        documents and the counters describe the same moment, and adding the
        difference is exact even if writes resume at once. Old time buckets are
        deleted. Run at start and then every ``recount_s`` seconds
        (``run_recounts``); a busy pipeline postpones it to its next quiet moment,
        found cheaply first (counters still for ``grace_s``) before the documents
        are read (about 190 s at a million records on FerretDB).
        """
        writes = self._writes
        before = await self.counters()
        await asyncio.sleep(grace_s)
        if await self.counters() != before or self._writes != writes or self._unbumped:
            return False  # busy: not worth reading every document now
        now = dt.datetime.now(dt.UTC)
        counted = await self._count_documents(now)
        await asyncio.sleep(grace_s)
        after = await self.counters()
        if after != before or self._writes != writes or self._unbumped:
            return False
        correction = {
            key: counted.get(key, 0) - after.get(key, 0)
            for key in counted.keys() | after.keys()
            if key != OPEN_VERSION and in_window(key, now)
        }
        await self.bump({key: n for key, n in correction.items() if n})
        stale = [key for key in after if not in_window(key, now)]
        await asyncio.gather(*(self.counts.delete_one({"_id": key}) for key in stale))
        corrected = sorted((key, n) for key, n in correction.items() if n)
        if corrected:
            log.warning("status recount corrected %d counters, e.g. %s", len(corrected), corrected[:5])
        return True

    async def _count_documents(self, now: dt.datetime) -> Tally:
        """The counters as the index and open entries say they should be (one pass over each)."""
        counted: Tally = {}
        async for entry in self.index.find({}, {"state": 1, "group": 1, "updated_at": 1}):
            add(counted, {state_key(entry["state"], entry.get("group")): 1})
            at = entry.get("updated_at")
            if entry["state"] == State.ARCHIVED.value and at is not None:
                add(counted, {key: 1 for key in (minute_key(at), hour_key(at)) if in_window(key, now)})
        async for entry in self.open.find({}, {"keys": 1}):
            add(counted, owner_keys(key.partition("|")[0] for key in entry.get("keys", [])))
        return counted

    # -- reads ------------------------------------------------------------------------------

    async def get(self, vin: str) -> StatusRecord | None:
        doc = await self.collection.find_one({"_id": vin})
        return from_document(doc) if doc is not None else None

    async def open_version(self) -> int:
        doc = await self.counts.find_one({"_id": OPEN_VERSION})
        return int(doc["n"]) if doc else 0

    async def open_entries(self) -> dict[str, list[OpenEntry]]:
        """Every waiting record, per team that owns one of its findings, oldest first (one pass)."""
        cursor = self.open.find({}, {"updated_at": 1, "vehicle_group": 1, "keys": 1})
        return entries_by_owner(
            [
                (doc["_id"], doc["updated_at"], doc.get("vehicle_group"), doc.get("keys", []))
                async for doc in cursor
            ]
        )

    async def open_items(self, vins: Sequence[str], owner: Owner, now: dt.datetime) -> list[MongoDoc]:
        """The worklist items of ``vins`` in that order (by ``_id``, overlapped), each with ``owner``'s findings.

        A VIN that stopped waiting for ``owner`` since the view was taken is left out.
        """
        limit = asyncio.Semaphore(CONCURRENT_LOOKUPS)

        async def one(vin: str) -> MongoDoc | None:
            async with limit:
                return await self.open.find_one({"_id": vin})

        docs = await asyncio.gather(*(one(vin) for vin in vins))
        return [work_item(doc, owner, now) for doc in docs if doc is not None and owner_of(doc, owner)]


class Worklists:
    """Pages of the worklists, from a view of the waiting records kept in this process.

    FerretDB answers a filter on the open collection only by reading all of it
    (see ``shared.mongo``): too slow per request when 100,000 records wait. So
    the selection (team, group, finding code, age) and the paging run on a view
    of the waiting records (VIN, time, group, codes) held here, and only the
    page's records are read, by ``_id``. The view is taken again when the open
    version counter moved; a request waits ``wait_s`` for the new view and
    otherwise is answered from the last one (``as_of`` says when it was taken),
    so at rest every answer is exact and under load none waits long.
    """

    def __init__(self, store: StatusStore, wait_s: float = WORKLIST_WAIT_S) -> None:
        self.store, self.wait_s = store, wait_s
        self._view: tuple[int, dt.datetime, dict[str, list[OpenEntry]]] | None = None
        self._loading: asyncio.Task[tuple[int, dt.datetime, dict[str, list[OpenEntry]]]] | None = None

    async def page(self, query: WorklistQuery) -> dict[str, Any]:
        version = await self.store.open_version()
        view = self._view
        if view is None or view[0] != version:
            view = await self._fresher(view)
        _, as_of, entries = view
        now = dt.datetime.now(dt.UTC)
        chosen, total = select(entries.get(query.owner.value, []), query, now)
        items = await self.store.open_items([entry.vin for entry in chosen], query.owner, now)
        return {
            "owner": query.owner.value,
            "items": items,
            "total": total,
            "page": query.page,
            "size": query.size,
            "order": "oldest first",
            "as_of": as_of.isoformat(),
        }

    def prime(self) -> None:
        """Start taking the first view now (at start), so the first request need not wait for all of it."""
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())

    async def _fresher(
        self, stale: tuple[int, dt.datetime, dict[str, list[OpenEntry]]] | None
    ) -> tuple[int, dt.datetime, dict[str, list[OpenEntry]]]:
        if self._loading is None or self._loading.done():
            self._loading = asyncio.create_task(self._load())
        if stale is None:
            return await asyncio.shield(self._loading)
        try:
            return await asyncio.wait_for(asyncio.shield(self._loading), self.wait_s)
        except TimeoutError:
            return stale

    async def _load(self) -> tuple[int, dt.datetime, dict[str, list[OpenEntry]]]:
        # The version is read before the entries: a change while they are read leaves the view
        # with the older version, so the next request takes the view again.
        version, as_of = await self.store.open_version(), dt.datetime.now(dt.UTC)
        view = (version, as_of, await self.store.open_entries())
        self._view = view
        return view


async def run_recounts(store: StatusStore, interval_s: float, busy_retry_s: float = 30.0) -> None:
    """Recount at start and every ``interval_s`` (sooner again when writers were busy), until cancelled.

    A failed recount (database away) is logged and tried again at the next
    turn: nothing is lost meanwhile, the counters only stay as they were.
    """
    while True:
        try:
            done = await store.recount()
        except Exception:  # the loop must outlive a database outage; the next turn retries
            log.exception("status recount failed; trying again in %.0f s", busy_retry_s)
            done = False
        await asyncio.sleep(interval_s if done else min(busy_retry_s, interval_s))


def to_document(record: StatusRecord) -> MongoDoc:
    """The record as MongoDB keeps it: ``_id`` the VIN, times as dates."""
    return {"_id": record.vin, **record.model_dump()}


def from_document(doc: MongoDoc) -> StatusRecord:
    return StatusRecord.model_validate({key: value for key, value in doc.items() if key != "_id"})


def index_entry(record: StatusRecord) -> MongoDoc:
    """What a recount needs of a record."""
    return {
        "_id": record.vin,
        "state": record.state.value,
        "group": record.vehicle_group,
        "owners": record.owners(),
        "updated_at": record.updated_at,
    }


def open_entry(record: StatusRecord) -> MongoDoc:
    """What a worklist needs of a waiting record: ``keys`` are ``owner|code`` per finding."""
    return {
        "_id": record.vin,
        "record_id": record.record_id,
        "revision": record.revision,
        "state": record.state.value,
        "vehicle_group": record.vehicle_group,
        "updated_at": record.updated_at,
        "keys": open_keys(record),
        "findings": [finding.model_dump(mode="json") for finding in record.findings],
    }


def owner_of(doc: MongoDoc, owner: Owner) -> bool:
    return any(key.partition("|")[0] == owner.value for key in doc.get("keys", []))


def work_item(doc: MongoDoc, owner: Owner, now: dt.datetime) -> MongoDoc:
    """A worklist entry: the waiting record with only the findings ``owner`` must act on."""
    return {
        "vin": doc["_id"],
        "record_id": doc["record_id"],
        "revision": doc["revision"],
        "state": doc["state"],
        "vehicle_group": doc.get("vehicle_group"),
        "updated_at": doc["updated_at"],
        "age_s": age_s(doc["updated_at"], now),
        "findings": [f for f in doc.get("findings", []) if f["owner"] == owner.value],
    }
