"""The status read model in MongoDB: the records, a slim index of them, the unsettled records, the counters.

Collections keyed by ``_id``, so that every hot read and write is by ``_id``
(see ``shared.mongo``):

- ``status_records``: one document per VIN, the typed record with its timeline
  (packed as its JSON beside ``seq``, see ``to_document``);
- ``status_records_index``: per VIN its state, group and time as of its creation
  and its last archiving, what a recount reads for an archived record;
- ``status_records_unsettled``: per VIN not archived (on its way, waiting for a
  person, failed, rejected), what the worklists and state lists show, and what a
  recount reads for a record not archived (it is written on every change of
  such a record, so the index entry need not be: see ``_index_due``);
- ``status_records_counts``: small counter documents (``services.status.tally``)
  moved by ``$inc`` as records are written, which the readiness board reads;
- ``status_records_journal`` and ``_heads``: which VINs' unsettled entries each
  writing process changed, in order, so the lists follow them (``Worklists``).

A VIN's events come from one partition, so one status instance folds them at a
time, except around a consumer group rebalance. Within a process a per-VIN lock
makes read-fold-write one step; across processes the document's ``seq`` is
checked just before the write (the insert of a new VIN fails on the unique
``_id``), and a lost race folds the events again into what the other wrote.
The guarded replace is one request, filtered by ``_id`` and ``seq``: atomic on
MongoDB, a read and a write inside the server on FerretDB (see ``shared.mongo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.status.fold import StatusRecord, StatusServiceError, fold
from services.status.tally import (
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
from services.status.worklist import WAITING, Entry, ListQuery, View, age_s, open_keys
from shared.contracts.events import State, StatusEvent
from shared.contracts.findings import Owner
from shared.mongo import MongoDoc, insert_new, serves_secondary_indexes

COLLECTION = "status_records"
MAX_ATTEMPTS = 20
CONCURRENT_VINS = 8  # VINs of one batch folded at once on the path of single requests
CHUNK = 250  # VINs of a batch folded with one bulk read and write each: bounds the records held
IDS_PER_READ = 1000  # ids in one $in: the stack's FerretDB answers up to 1,000 from its index
RECOUNT_GRACE_S = 2.0  # longer than any writer takes from a record write to its counter update
WORKLIST_WAIT_S = 0.05  # how long a list request waits for a fresher view before serving the last one
FIRST_WAIT_S = 2.0  # how long a list request waits for the first view before it is told to come back
JOURNAL_KEEP = 20_000  # journal entries each writing process keeps; a reader further behind reloads
RELOAD_S = 900.0  # a view is read whole again this often (it repairs what a writer's crash left unsaid)
CATCH_UP_LIMIT = 2_000  # journal entries a reader follows before it rather reads the view whole
HEAD_MAX_AGE = dt.timedelta(days=2)  # a writer silent this long is gone: its journal is deleted
KNOWN_VINS = (
    50_000  # VINs this process knows have a record (then it forgets them all, and learns again); 5 MB
)

log = logging.getLogger(__name__)


class ListsNotReady(StatusServiceError):
    """The lists' view is still being read after a start; the request is answered later, not held."""


class WriteConflict(StatusServiceError):
    """Other writers kept winning; the message is delivered again and folded once more."""


class StatusStore:
    """The read model and the collections derived from it (see the module docstring)."""

    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection
        db, name = collection.database, collection.name
        self.index, self.unsettled, self.counts = (
            db[f"{name}_index"],
            db[f"{name}_unsettled"],
            db[f"{name}_counts"],
        )
        self.journal, self.heads = db[f"{name}_journal"], db[f"{name}_heads"]
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._writes = 0  # record writes begun in this process: a recount checks none began meanwhile
        self._unbumped = 0  # folds in this process whose counter change is not yet applied
        self.writer = uuid.uuid4().hex[:16]  # this process in the journal
        self._journal_n = 0
        self._touched: set[str] = set()  # VINs whose unsettled entry was written, not yet journalled
        self._journal_lock = asyncio.Lock()
        self._known: set[str] = set()  # VINs with a record: not tried as new
        self._rederive: set[str] = set()  # VINs whose entries a lost bulk insert may have written

    async def setup(self) -> None:
        """Forget the journals of writers long gone; indexes for the recount, where the server uses them."""
        cutoff = dt.datetime.now(dt.UTC) - HEAD_MAX_AGE
        async for head in self.heads.find({}):
            if head.get("at") is None or head["at"] < cutoff:
                await self.journal.delete_many({"writer": head["_id"]})
                await self.heads.delete_one({"_id": head["_id"]})
        if not await serves_secondary_indexes(self.collection.database.client):
            return
        for field in ("state", "owners", "group"):
            await self.index.create_index(field)

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
            await self._journal_touched()
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

        The VINs go ``CHUNK`` at a time. Those new to this process are tried in
        bulk as new (``_create_new``); the others are read and written in bulk
        (``_fold_known``): a few requests per chunk instead of four per VIN.
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
        change: Tally = {}
        written, single, vins = 0, [], list(by_vin)
        try:
            for start in range(0, len(vins), CHUNK):
                chunk = {vin: by_vin[vin] for vin in vins[start : start + CHUNK]}
                created = await self._create_new(chunk)
                for created_change in created.values():
                    add(change, created_change)
                known = {
                    v: items for v, items in chunk.items() if v not in created and v not in self._rederive
                }
                single += [vin for vin in chunk if vin not in created and vin in self._rederive]
                known_change, known_written, left = await self._fold_known(known)
                add(change, known_change)
                written += len(created) + known_written
                single += left
            results = await asyncio.gather(*(one(v, by_vin[v]) for v in single), return_exceptions=True)
            for result in results:
                if isinstance(result, dict):
                    add(change, result)
        finally:
            try:
                await self.bump(change)  # what was written counts, also when a later chunk failed
            finally:
                self._unbumped -= 1
                await self._journal_touched()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return written + sum(1 for result in results if isinstance(result, dict))

    async def _fold_known(self, by_vin: Mapping[str, list[StatusEvent]]) -> tuple[Tally, int, list[str]]:
        """Fold VINs that have a record in bulk: one read, then a bulk write per collection.

        The records are read by ``_id`` ``$in``, folded here, and their index and
        unsettled entries written before the records, as ``_write`` does. Each
        record write is guarded by the ``seq`` read. Returns the counters'
        change of the records written, how many were, and the VINs left to the
        path of single requests: those without a record after all, and those
        whose record another writer changed meanwhile (their entries are then
        derived again from what that writer stored).
        """
        if not by_vin:
            return {}, 0, []
        async with contextlib.AsyncExitStack() as held:
            for vin in sorted(by_vin):
                await held.enter_async_context(self._lock(vin))
            before = await self.get_many(list(by_vin))
            folded: dict[str, tuple[StatusRecord, StatusRecord]] = {}
            for vin, vin_events in by_vin.items():
                current = before.get(vin)
                after = current
                for event in vin_events:
                    after = fold(after, event) or after
                if current is not None and after is not None and after is not current:
                    folded[vin] = (current, after)
            left = [vin for vin in by_vin if vin not in before]
            if not folded:
                return {}, 0, left
            self._writes += 1
            await self._derive_many(
                [after for _, after in folded.values()],
                {vin: current for vin, (current, _) in folded.items()},
            )
            refused = await self._replace_guarded(folded)
            self._rederive.update(refused)
            written = {vin: pair for vin, pair in folded.items() if vin not in refused}
            self._remember(set(written))
            change: Tally = {}
            for current, after in written.values():
                add(change, tally_change(current, after))
            return change, len(written), [*left, *sorted(refused)]

    async def get_many(self, vins: Sequence[str]) -> dict[str, StatusRecord]:
        """The records of ``vins`` that exist, read by ``_id`` ``$in`` (see shared.mongo)."""
        return {vin: from_document(doc) for vin, doc in (await by_ids(self.collection, vins)).items()}

    async def _derive_many(
        self, records: Sequence[StatusRecord], before: Mapping[str, StatusRecord | None] | None = None
    ) -> None:
        """The records' index entries where due and, until archived, their unsettled entries (else deleted).

        One bulk write to each collection, for one record or a chunk of them.
        ``before`` holds the records as they were read, where known: an index
        entry is written only when ``_index_due`` says so. Without ``before``
        (a repair of what a lost writer left) every index entry is written.
        """
        due = [r for r in records if before is None or _index_due(before.get(r.vin), r)]
        if due:
            await self.index.bulk_write(
                [ReplaceOne({"_id": r.vin}, index_entry(r), upsert=True) for r in due], ordered=False
            )
        await self.unsettled.bulk_write(
            [
                DeleteOne({"_id": r.vin})
                if r.state is State.ARCHIVED
                else ReplaceOne({"_id": r.vin}, unsettled_entry(r), upsert=True)
                for r in records
            ],
            ordered=False,
        )
        self._touched.update(r.vin for r in records)

    async def _replace_guarded(self, folded: Mapping[str, tuple[StatusRecord, StatusRecord]]) -> set[str]:
        """Replace each record unless its ``seq`` moved since it was read; the VINs refused.

        A bulk write answers only how many matched. When some did not, the
        records are read again: one that is not what was written was refused.
        """
        result = await self.collection.bulk_write(
            [
                ReplaceOne({"_id": vin, "seq": current.seq}, to_document(after))
                for vin, (current, after) in folded.items()
            ],
            ordered=False,
        )
        if result.matched_count == len(folded):
            return set()
        stored = await self.get_many(list(folded))
        return {vin for vin, (_, after) in folded.items() if stored.get(vin) != after}

    async def _create_new(self, by_vin: Mapping[str, list[StatusEvent]]) -> dict[str, Tally]:
        """Write the records of VINs seen for the first time in bulk: three requests for all of them.

        A VIN this process does not know is tried as new: its events folded
        into no record, its index entries inserted in one request. The unique
        ``_id`` refuses the entry of a VIN that has one (a record is written
        only after its entries, so a VIN without an entry has no record); the
        refused take the path of single requests. Then the unsettled entries
        and the records, in the same order as ``_write``. A record refused
        there lost a race to another writer: it is folded again after its
        entries are written from what that writer stored. Returns the counters'
        change per VIN written.
        """
        folded: dict[str, StatusRecord] = {}
        for vin, vin_events in by_vin.items():
            if vin in self._known or vin in self._rederive:
                continue
            record: StatusRecord | None = None
            for event in vin_events:
                record = fold(record, event) or record
            if record is not None:
                folded[vin] = record
        if not folded:
            return {}
        self._writes += 1
        entered = await insert_new(self.index, [index_entry(record) for record in folded.values()])
        new = {vin: record for vin, record in folded.items() if vin in entered}
        unsettled = [unsettled_entry(r) for r in new.values() if r.state is not State.ARCHIVED]
        listed = await insert_new(self.unsettled, unsettled)
        for entry in unsettled:  # a crash left an entry without its index entry: written over
            if entry["_id"] not in listed:
                await self.unsettled.replace_one({"_id": entry["_id"]}, entry, upsert=True)
        self._touched.update(entry["_id"] for entry in unsettled)
        written = await insert_new(self.collection, [to_document(record) for record in new.values()])
        self._rederive.update(set(new) - written)
        self._remember(written)
        return {vin: tally_change(None, new[vin]) for vin in written}

    def _remember(self, vins: set[str]) -> None:
        if len(self._known) + len(vins) > KNOWN_VINS:
            self._known.clear()
        self._known.update(vins)

    async def _fold_vin(self, vin: str, events: list[StatusEvent]) -> Tally | None:
        """The counters' change for the VIN's write, or None when nothing was written."""
        before = await self.get(vin)
        if vin in self._rederive and before is not None:
            await self._derive(before)  # a lost bulk insert wrote entries of its own fold
        self._rederive.discard(vin)
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
        await self._derive_many([new], {new.vin: current})
        self._remember({new.vin})
        if current is None:
            try:
                await self.collection.insert_one(to_document(new))
            except DuplicateKeyError:
                return False
            return True
        # One request: the ``_id`` finds the document, the ``seq`` guards it (see shared.mongo).
        written = await self.collection.replace_one({"_id": new.vin, "seq": current.seq}, to_document(new))
        return written.matched_count == 1

    async def _derive(self, record: StatusRecord) -> None:
        """The record's index entry and, until it is archived, its unsettled entry (by ``_id``)."""
        await self._derive_many([record])

    async def _journal_touched(self) -> None:
        """Tell the lists which unsettled entries this process changed: one journal entry per fold.

        The entry is written after the entries it names, and the writer's head
        after the entry, so a reader that sees a head finds every change up to
        it. A crash before the journal write leaves a change unsaid until the
        readers' next whole read (``RELOAD_S``). Never raises: the fold is done.
        """
        async with self._journal_lock:
            if not self._touched:
                return
            vins, self._touched = sorted(self._touched), set()
            n, now = self._journal_n + 1, dt.datetime.now(dt.UTC)
            try:
                await self.journal.insert_one(
                    {"_id": journal_id(self.writer, n), "writer": self.writer, "vins": vins, "at": now}
                )
                await self.heads.replace_one({"_id": self.writer}, {"n": n, "at": now}, upsert=True)
            except Exception:  # the database went away: the next fold journals these again
                self._touched.update(vins)
                log.warning("status journal write failed; kept %d VINs for the next one", len(vins))
                return
            self._journal_n = n
            if n > JOURNAL_KEEP:
                await self.journal.delete_one({"_id": journal_id(self.writer, n - JOURNAL_KEEP)})

    # -- counters ---------------------------------------------------------------------------

    async def bump(self, change: Mapping[str, int]) -> None:
        """Move each counter by its change: one ``$inc`` by ``_id`` per counter, overlapped.

        Separate requests, not one ``bulk_write``: a counter's first upsert may
        meet another process's, and the duplicate is then retried as a plain
        ``$inc`` for that counter alone. Within the process one ``$inc`` per
        counter at a time.
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
            if in_window(key, now)
        }
        await self.bump({key: n for key, n in correction.items() if n})
        stale = [key for key in after if not in_window(key, now)]
        await asyncio.gather(*(self.counts.delete_one({"_id": key}) for key in stale))
        corrected = sorted((key, n) for key, n in correction.items() if n)
        if corrected:
            log.warning("status recount corrected %d counters, e.g. %s", len(corrected), corrected[:5])
        return True

    async def _count_documents(self, now: dt.datetime) -> Tally:
        """The counters as the unsettled and index entries say they should be (one pass over each).

        A record not archived is counted from its unsettled entry, which every
        change of it writes; its index entry may be older (``_index_due``). The
        other records are counted from their index entries.
        """
        counted: Tally = {}
        unsettled: set[str] = set()
        async for entry in self.unsettled.find({}, {"keys": 1, "state": 1, "vehicle_group": 1}):
            unsettled.add(entry["_id"])
            add(counted, {state_key(entry["state"], entry.get("vehicle_group")): 1})
            if entry.get("state") in WAITING:
                add(counted, owner_keys(key.partition("|")[0] for key in entry.get("keys", [])))
        async for entry in self.index.find({}, {"state": 1, "group": 1, "updated_at": 1}):
            if entry["_id"] in unsettled:
                continue
            add(counted, {state_key(entry["state"], entry.get("group")): 1})
            at = entry.get("updated_at")
            if entry["state"] == State.ARCHIVED.value and at is not None:
                add(counted, {key: 1 for key in (minute_key(at), hour_key(at)) if in_window(key, now)})
        return counted

    # -- reads ------------------------------------------------------------------------------

    async def get(self, vin: str) -> StatusRecord | None:
        doc = await self.collection.find_one({"_id": vin})
        return from_document(doc) if doc is not None else None

    async def unsettled_view(self) -> View:
        """Every unsettled record as a list entry (one pass over the collection)."""
        cursor = self.unsettled.find({}, {"updated_at": 1, "vehicle_group": 1, "keys": 1, "state": 1})
        return View([entry_of(doc) async for doc in cursor])

    async def journal_heads(self) -> dict[str, int]:
        """How far each writing process's journal goes."""
        return {doc["_id"]: int(doc["n"]) async for doc in self.heads.find({})}

    async def journalled(self, writer: str, first: int, last: int) -> set[str] | None:
        """The VINs a writer's journal entries ``first``..``last`` name; None when one is gone."""
        ids = [journal_id(writer, n) for n in range(first, last + 1)]
        docs = await by_ids(self.journal, ids)
        if len(docs) < len(ids):
            return None
        return {vin for doc in docs.values() for vin in doc["vins"]}

    async def unsettled_docs(self, vins: Sequence[str]) -> dict[str, MongoDoc | None]:
        """The unsettled entries of ``vins`` in their order, read by ``_id``; None for a VIN that has none."""
        docs = await by_ids(self.unsettled, vins)
        return {vin: docs.get(vin) for vin in vins}


@dataclass
class Followed:
    """A view of the unsettled records and how far into each writer's journal it is."""

    view: View
    heads: dict[str, int]
    taken: float  # monotonic time the whole read began
    as_of: dt.datetime  # wall time the view was last brought up to date


class Worklists:
    """Pages of the worklists and state lists, from a view of the unsettled records kept here.

    FerretDB answers a filter on a collection only by reading all of it (see
    ``shared.mongo``): too slow per request with 100,000 records waiting. So the
    selection (team or state, group, finding code, age) and the paging run on a
    view held in this process, and only the page's records are read, by ``_id``.

    The view is read whole once (at start, ``prime``; a request that comes before
    it is ready waits ``first_wait_s`` and is then told to come back with
    ``ListsNotReady``), then follows the writers' journals: a request first reads the heads (one small collection), and when
    a writer moved on, the VINs its new journal entries name are read again by
    ``_id`` and put into the view. A request waits ``wait_s`` for that and
    otherwise is answered from the view as it is (``as_of`` says when it was
    last brought up to date): at rest every answer is exact, under load none
    waits long. The view is read whole again when a reader fell further behind
    than the journals keep, and every ``reload_s`` to repair what a writer that
    crashed between its write and its journal entry left unsaid.
    """

    def __init__(
        self,
        store: StatusStore,
        wait_s: float = WORKLIST_WAIT_S,
        reload_s: float = RELOAD_S,
        first_wait_s: float = FIRST_WAIT_S,
    ) -> None:
        self.store, self.wait_s, self.reload_s, self.first_wait_s = store, wait_s, reload_s, first_wait_s
        self._followed: Followed | None = None
        self._refresh: asyncio.Task[Followed] | None = None

    async def page(self, query: ListQuery) -> dict[str, Any]:
        followed = await self._current()
        now = dt.datetime.now(dt.UTC)
        chosen, total = followed.view.select(query, now)
        docs = await self.store.unsettled_docs([entry.vin for entry in chosen])
        items = [
            list_item(doc, query.owner, now)
            for doc in docs.values()
            if doc is not None and still_listed(doc, query)
        ]
        listed = {"owner": query.owner.value} if query.owner else {"state": query.state.value}  # type: ignore[union-attr]
        return {
            **listed,
            "items": items,
            "total": total,
            "page": query.page,
            "size": query.size,
            "order": "oldest first",
            "as_of": followed.as_of.isoformat(),
        }

    def prime(self) -> None:
        """Start reading the view now (at start), so the first request need not wait for all of it."""
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._bring_up_to_date(None))

    async def _current(self) -> Followed:
        followed = self._followed
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._bring_up_to_date(followed))
        if followed is None:
            try:
                return await asyncio.wait_for(asyncio.shield(self._refresh), self.first_wait_s)
            except TimeoutError:
                raise ListsNotReady(
                    "the lists are being read after a start (about 40 s per million records); "
                    "ask again shortly"
                ) from None
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh), self.wait_s)
        except TimeoutError:
            return followed

    async def _bring_up_to_date(self, followed: Followed | None) -> Followed:
        if followed is None or time.monotonic() - followed.taken > self.reload_s:
            followed = await self._read_whole()
        if not await self._follow(followed):
            followed = await self._read_whole()
            await self._follow(followed)
        self._followed = followed
        return followed

    async def _read_whole(self) -> Followed:
        # The heads are read before the entries: a change while they are read is in the
        # journal after those heads, and following it puts the VIN in again.
        began, heads = time.monotonic(), await self.store.journal_heads()
        return Followed(await self.store.unsettled_view(), heads, began, dt.datetime.now(dt.UTC))

    async def _follow(self, followed: Followed) -> bool:
        """Apply the journals since the view's heads; False when a whole read is due instead."""
        as_of, heads = dt.datetime.now(dt.UTC), await self.store.journal_heads()
        behind = {writer: (followed.heads.get(writer, 0), n) for writer, n in heads.items()}
        behind = {writer: span for writer, span in behind.items() if span[1] > span[0]}
        if sum(last - known for known, last in behind.values()) > CATCH_UP_LIMIT:
            return False
        vins: set[str] = set()
        for writer, (known, last) in behind.items():
            named = await self.store.journalled(writer, known + 1, last)
            if named is None:
                return False
            vins |= named
        for vin, doc in (await self.store.unsettled_docs(sorted(vins))).items():
            if doc is None:
                followed.view.drop(vin)
            else:
                followed.view.put(entry_of(doc))
        followed.heads.update({writer: last for writer, (_, last) in behind.items()})
        followed.as_of = as_of
        return True


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


async def by_ids(collection: AsyncCollection[MongoDoc], ids: Sequence[str]) -> dict[str, MongoDoc]:
    """The documents of ``ids`` that exist, by ``_id``: ``$in`` of at most ``IDS_PER_READ`` per request."""
    found: dict[str, MongoDoc] = {}
    for start in range(0, len(ids), IDS_PER_READ):
        async for doc in collection.find({"_id": {"$in": list(ids[start : start + IDS_PER_READ])}}):
            found[doc["_id"]] = doc
    return found


def to_document(record: StatusRecord) -> MongoDoc:
    """The record as kept: ``_id`` the VIN, ``seq`` for the guard, the record itself as its JSON.

    Why packed: the record is only ever read whole by ``_id`` (what is queried
    lives in the index and unsettled entries), and FerretDB's cost per document
    grows with its fields, a timeline holding up to 20 entries of eight.
    Measured on FerretDB under the status fold, 500 records of five entries:
    read by ``$in`` 0.45 s as fields, 0.15 s packed; guarded replace 0.42 s
    and 0.17 s.
    """
    return {"_id": record.vin, "seq": record.seq, "json": record.model_dump_json().encode()}


def from_document(doc: MongoDoc) -> StatusRecord:
    """The record of a stored document, packed or kept as fields (as before 2026-12-01)."""
    packed = doc.get("json")
    if packed is not None:
        return StatusRecord.model_validate_json(packed)
    return StatusRecord.model_validate({key: value for key, value in doc.items() if key != "_id"})


def _index_due(before: StatusRecord | None, after: StatusRecord) -> bool:
    """Whether writing ``after`` must write its index entry too.

    A new record's entry is its claim (``_create_new``), and an archived
    record's entry is what a recount counts it by, so both are written. A record
    not archived is counted from its unsettled entry, written on each of its
    changes, so its index entry is left as it was: on the way to the archive a
    vehicle's record costs the database two writes per fold, not three.
    (Before, the index entry was one of the three writes of every fold.)
    """
    if before is None:
        return True
    return after.state is State.ARCHIVED and index_entry(before) != index_entry(after)


def index_entry(record: StatusRecord) -> MongoDoc:
    """What a recount needs of an archived record (and, at its creation, the claim of its VIN)."""
    return {
        "_id": record.vin,
        "state": record.state.value,
        "group": record.vehicle_group,
        "owners": record.owners(),
        "updated_at": record.updated_at,
    }


def unsettled_entry(record: StatusRecord) -> MongoDoc:
    """What the lists need of a record not archived: ``keys`` are ``owner|code`` per finding."""
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


def entry_of(doc: MongoDoc) -> Entry:
    return Entry(
        doc["updated_at"],
        doc["_id"],
        doc["state"],
        doc.get("vehicle_group"),
        frozenset(doc.get("keys", [])),
    )


def journal_id(writer: str, n: int) -> str:
    return f"{writer}:{n:012d}"


def still_listed(doc: MongoDoc, query: ListQuery) -> bool:
    """Whether the entry, read after the view was taken, still belongs to the list."""
    if query.owner is not None:
        return doc["state"] in WAITING and any(
            key.partition("|")[0] == query.owner.value for key in doc.get("keys", [])
        )
    return query.state is not None and doc["state"] == query.state.value


def list_item(doc: MongoDoc, owner: Owner | None, now: dt.datetime) -> MongoDoc:
    """A list entry: the record with its findings (in a worklist, only those ``owner`` must act on)."""
    return {
        "vin": doc["_id"],
        "record_id": doc["record_id"],
        "revision": doc["revision"],
        "state": doc["state"],
        "vehicle_group": doc.get("vehicle_group"),
        "updated_at": doc["updated_at"],
        "age_s": age_s(doc["updated_at"], now),
        "findings": [f for f in doc.get("findings", []) if owner is None or f["owner"] == owner.value],
    }
