"""The record documents: status events folded into them, one write per VIN per batch, and read by VIN.

A write of a record also writes what is derived from it, first: its index
entry where due (``index_due``) and, until it is archived, its unsettled entry
(else that is deleted). Then the record. Each write of a batch adds the change
of what the records contribute to the counters (``Counters.moving``, applied
once per batch) and notes the VINs whose unsettled entries it wrote in the
journal (``Journal.flush``, once per batch).

A batch folds each VIN's events once onto the record as read (``fold_batch``)
and writes the result by one of three paths, in bulk where it can:

- VINs this process does not know are tried as new (``_create``): their index
  entries inserted as claims, then the unsettled entries and the records, a
  request for each of the three for all of them;
- VINs with a record are read and written in bulk (``_replace``), each record
  guarded by the ``seq`` it was read with;
- what neither settled takes the path of single requests (``_fold_alone``):
  read, fold, write, and after a lost race the same again.

A VIN's events come from one partition, so one status instance folds them at a
time, except around a consumer group rebalance. Within a process a per-VIN lock
makes read-fold-write one step; across processes the document's ``seq`` is
checked just before the write (the insert of a new VIN fails on the unique
``_id``), and a lost race folds the events again onto what the other wrote.
The guarded replace is one request, filtered by ``_id`` and ``seq``: atomic on
MongoDB, a read and a write inside the server on FerretDB (see ``shared.mongo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import DuplicateKeyError

from services.status.adapters.archived import ArchivedLanes
from services.status.adapters.counters import Counters
from services.status.adapters.documents import (
    Collections,
    by_ids,
    from_document,
    index_entry,
    to_document,
    unsettled_entry,
)
from services.status.adapters.journal import Journal
from services.status.archived import lane_change
from services.status.fold import StatusRecord, StatusServiceError, fold_batch
from services.status.tally import Tally, add, tally_change
from shared.contracts.events import State, StatusEvent
from shared.mongo import insert_new

MAX_ATTEMPTS = 20
CONCURRENT_VINS = 8  # VINs of one batch folded at once on the path of single requests
CHUNK = 250  # VINs of a batch folded with one bulk read and write each: bounds the records held
KNOWN_VINS = (
    50_000  # VINs this process knows have a record (then it forgets them all, and learns again); 5 MB
)

Pair = tuple[StatusRecord | None, StatusRecord]  # a VIN's record as read, and after its events


class WriteConflict(StatusServiceError):
    """Other writers kept winning; the message is delivered again and folded once more."""


@dataclass
class Written:
    """What one batch wrote so far: the records, and the counters' change they make (the lanes' too)."""

    change: Tally
    zone: dt.tzinfo = dt.UTC
    records: dict[str, StatusRecord] = field(default_factory=dict)
    lanes: Tally = field(
        default_factory=dict
    )  # the archived list's lanes' counters (``ArchivedLanes.flush``)

    def add(self, before: StatusRecord | None, after: StatusRecord) -> None:
        add(self.change, tally_change(before, after))
        add(self.lanes, lane_change(before, after, self.zone))
        self.records[after.vin] = after


def fold_vins(
    current: Mapping[str, StatusRecord | None], by_vin: Mapping[str, Sequence[StatusEvent]]
) -> dict[str, Pair]:
    """The one fold of every write path: per VIN whose events change its record, the record before and after."""
    folded: dict[str, Pair] = {}
    for vin, events in by_vin.items():
        before = current.get(vin)
        after = fold_batch(before, events)
        if after is not None:
            folded[vin] = (before, after)
    return folded


def index_due(before: StatusRecord | None, after: StatusRecord) -> bool:
    """Whether writing ``after`` must write its index entry too.

    A new record's entry is its claim (``_create``), and an archived record's
    entry is what a recount counts it by, so both are written. A record not
    archived is counted from its unsettled entry, written on each of its
    changes, so its index entry is left as it was: on the way to the archive a
    vehicle's record costs the database two writes per fold, not three. A record
    leaving the archive (a correction's new revision) writes it once more, so that
    the archived list, which checks its entries against it, leaves the vehicle out.
    """
    if before is None:
        return True
    if before.state is State.ARCHIVED and after.state is not State.ARCHIVED:
        return True
    return after.state is State.ARCHIVED and index_entry(before) != index_entry(after)


class RecordWriter:
    """Folds status events into the records (``apply``, ``apply_many``) and reads them (``get``).

    What it keeps in memory, and when that is let go:

    - a lock per VIN, held while its record is read, folded and written; gone
      when no one holds it (weak references);
    - the VINs known to have a record, so a batch does not try them as new:
      learnt from each record written, forgotten all at once past
      ``KNOWN_VINS`` (a VIN wrongly thought new costs only a refused claim);
    - the doubtful VINs, whose write of the record lost to another writer after
      their entries were written: the entries may then describe this writer's
      fold while the record is the other's. The next fold of such a VIN takes
      the path of single requests and first derives the entries again from the
      stored record, which clears the doubt.
    """

    def __init__(
        self, kept: Collections, journal: Journal, counters: Counters, archived: ArchivedLanes
    ) -> None:
        self.records, self.index, self.unsettled = kept.records, kept.index, kept.unsettled
        self.journal, self.counters, self.archived = journal, counters, archived
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._known: set[str] = set()
        self._doubtful: set[str] = set()

    # -- reads ------------------------------------------------------------------------------

    async def get(self, vin: str) -> StatusRecord | None:
        doc = await self.records.find_one({"_id": vin})
        return from_document(doc) if doc is not None else None

    async def get_many(self, vins: Sequence[str]) -> dict[str, StatusRecord]:
        """The records of ``vins`` that exist, read by ``_id`` ``$in`` (see shared.mongo)."""
        return {vin: from_document(doc) for vin, doc in (await by_ids(self.records, vins)).items()}

    # -- folding ----------------------------------------------------------------------------

    async def apply(self, event: StatusEvent) -> StatusRecord | None:
        """Fold ``event`` into its VIN's record; the record as stored, or None when unchanged."""
        async with self._batch() as written:
            await self._fold_alone(event.vin, [event], written)
        return written.records.get(event.vin)

    async def apply_many(self, events: Sequence[StatusEvent]) -> int:
        """Fold a batch: each VIN read once and written at most once, then the counters moved once.

        The VINs go ``CHUNK`` at a time, by the bulk paths first (see the module
        docstring): a few requests per chunk instead of four per VIN. Events of
        one VIN are folded in the order they came. The counters move by the
        change of the records written, one ``$inc`` per counter, also when
        another VIN of the batch failed: its fault then propagates and the
        batch comes again, but the records already written fold to nothing
        then, so their change must not wait for it. Returns the number of
        records written.
        """
        by_vin: dict[str, list[StatusEvent]] = defaultdict(list)
        for event in events:
            by_vin[event.vin].append(event)
        async with self._batch() as written:
            alone: list[str] = []
            vins = list(by_vin)
            for start in range(0, len(vins), CHUNK):
                alone += await self._fold_chunk(
                    {vin: by_vin[vin] for vin in vins[start : start + CHUNK]}, written
                )
            await self._fold_each_alone({vin: by_vin[vin] for vin in alone}, written)
        return len(written.records)

    @contextlib.asynccontextmanager
    async def _batch(self) -> AsyncIterator[Written]:
        """A batch's writes: then the counters move by their change, and the journal names their VINs."""
        try:
            async with self.counters.moving() as change:
                written = Written(change, self.archived.zone)
                try:
                    yield written
                finally:  # inside the counters' move: a recount waits for the lanes too
                    await self.archived.flush(written.lanes)
        finally:
            await self.journal.flush()

    async def _fold_chunk(self, chunk: Mapping[str, list[StatusEvent]], written: Written) -> list[str]:
        """Fold a chunk by the bulk paths; the VINs left to the path of single requests."""
        await self._create({vin: events for vin, events in chunk.items() if self._maybe_new(vin)}, written)
        doubtful = [vin for vin in chunk if vin in self._doubtful]  # those just lost included
        known = {
            vin: events
            for vin, events in chunk.items()
            if vin not in written.records and vin not in self._doubtful
        }
        return [*doubtful, *await self._replace(known, written)]

    def _maybe_new(self, vin: str) -> bool:
        return vin not in self._known and vin not in self._doubtful

    async def _fold_each_alone(self, by_vin: Mapping[str, list[StatusEvent]], written: Written) -> None:
        """Each VIN by the path of single requests, ``CONCURRENT_VINS`` at once; all tried before a fault is raised."""
        limit = asyncio.Semaphore(CONCURRENT_VINS)

        async def one(vin: str, events: list[StatusEvent]) -> None:
            async with limit:
                await self._fold_alone(vin, events, written)

        results = await asyncio.gather(*(one(v, e) for v, e in by_vin.items()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _create(self, by_vin: Mapping[str, list[StatusEvent]], written: Written) -> None:
        """Write the records of VINs tried as new in bulk: three requests for all of them.

        Their events are folded into no record and the index entries inserted
        in one request. The unique ``_id`` refuses the entry of a VIN that has
        one (a record is written only after its entries, so a VIN without an
        entry has no record); the refused are left to the other paths. Then the
        unsettled entries and the records, in the same order as ``_write``. A
        record refused there lost a race to another writer: its VIN is doubtful.
        """
        folded = fold_vins({}, by_vin)
        if not folded:
            return
        entered = await insert_new(self.index, [index_entry(after) for _, after in folded.values()])
        new = {vin: after for vin, (_, after) in folded.items() if vin in entered}
        await self._list_new(new.values())
        await self.archived.enter((None, after) for after in new.values())
        stored = await insert_new(self.records, [to_document(record) for record in new.values()])
        self._doubtful.update(set(new) - stored)
        self._remember(stored)
        for vin in stored:
            written.add(None, new[vin])

    async def _list_new(self, records: Iterable[StatusRecord]) -> None:
        """The unsettled entries of new records not archived, inserted in one request."""
        unsettled = [unsettled_entry(r) for r in records if r.state is not State.ARCHIVED]
        listed = await insert_new(self.unsettled, unsettled)
        for entry in unsettled:  # a crash left an entry without its index entry: written over
            if entry["_id"] not in listed:
                await self.unsettled.replace_one({"_id": entry["_id"]}, entry, upsert=True)
        self.journal.note(entry["_id"] for entry in unsettled)

    async def _replace(self, by_vin: Mapping[str, list[StatusEvent]], written: Written) -> list[str]:
        """Fold VINs that have a record in bulk: one read, then a bulk write per collection.

        The records are read by ``_id`` ``$in``, folded, and their entries
        written before the records, as ``_write`` does. Each record write is
        guarded by the ``seq`` read. Returns the VINs left to the path of single
        requests: those without a record after all, and those whose record
        another writer changed meanwhile (doubtful now).
        """
        if not by_vin:
            return []
        async with contextlib.AsyncExitStack() as held:
            for vin in sorted(by_vin):
                await held.enter_async_context(self._lock(vin))
            current = await self.get_many(list(by_vin))
            found = {vin: events for vin, events in by_vin.items() if vin in current}
            folded = {vin: (current[vin], after) for vin, (_, after) in fold_vins(current, found).items()}
            left = [vin for vin in by_vin if vin not in current]
            if not folded:
                return left
            await self._derive(
                [after for _, after in folded.values()], {v: b for v, (b, _) in folded.items()}
            )
            refused = await self._replace_guarded(folded)
            self._doubtful.update(refused)
            won = {vin: pair for vin, pair in folded.items() if vin not in refused}
            self._remember(set(won))
            for before, after in won.values():
                written.add(before, after)
            return [*left, *sorted(refused)]

    async def _replace_guarded(self, folded: Mapping[str, tuple[StatusRecord, StatusRecord]]) -> set[str]:
        """Replace each record unless its ``seq`` moved since it was read; the VINs refused.

        A bulk write answers only how many matched. When some did not, the
        records are read again: one that is not what was written was refused.
        """
        result = await self.records.bulk_write(
            [
                ReplaceOne({"_id": vin, "seq": before.seq}, to_document(after))
                for vin, (before, after) in folded.items()
            ],
            ordered=False,
        )
        if result.matched_count == len(folded):
            return set()
        stored = await self.get_many(list(folded))
        return {vin for vin, (_, after) in folded.items() if stored.get(vin) != after}

    async def _fold_alone(self, vin: str, events: Sequence[StatusEvent], written: Written) -> None:
        """Read, fold and write one VIN, again after each lost race (up to ``MAX_ATTEMPTS``)."""
        async with self._lock(vin):
            for _ in range(MAX_ATTEMPTS):
                before = await self.get(vin)
                if vin in self._doubtful:
                    if before is not None:
                        await self._derive([before])  # a lost write may have left entries of its own fold
                    self._doubtful.discard(vin)
                folded = fold_vins({vin: before}, {vin: events}).get(vin)
                if folded is None:
                    return
                if await self._write(*folded):
                    written.add(*folded)
                    return
                self._doubtful.add(vin)
        raise WriteConflict(f"{vin}: {MAX_ATTEMPTS} concurrent writes won before this one")

    async def _write(self, before: StatusRecord | None, after: StatusRecord) -> bool:
        """Write ``after`` unless another writer changed the document since ``before`` was read.

        The derived documents go first: a crash before the record write leaves
        them one event ahead, and the redelivered event, which folds to the same
        record, writes them again and then the record.
        """
        await self._derive([after], {after.vin: before})
        self._remember({after.vin})
        if before is None:
            try:
                await self.records.insert_one(to_document(after))
            except DuplicateKeyError:
                return False
            return True
        # One request: the ``_id`` finds the document, the ``seq`` guards it (see shared.mongo).
        replaced = await self.records.replace_one({"_id": after.vin, "seq": before.seq}, to_document(after))
        return replaced.matched_count == 1

    async def _derive(
        self, records: Sequence[StatusRecord], before: Mapping[str, StatusRecord | None] | None = None
    ) -> None:
        """The records' index entries where due and, until archived, their unsettled entries (else deleted).

        One bulk write to each collection, for one record or a chunk of them.
        ``before`` holds the records as they were read, where known: an index
        entry is written only when ``index_due`` says so. Without ``before``
        (a repair of what a lost writer left) every index entry is written.
        """
        due = [r for r in records if before is None or index_due(before.get(r.vin), r)]
        if due:
            await self.index.bulk_write(
                [ReplaceOne({"_id": r.vin}, index_entry(r), upsert=True) for r in due], ordered=False
            )
        if before is not None:  # not a repair: its lanes were entered by the write it repairs
            await self.archived.enter((before.get(r.vin), r) for r in records)
        await self.unsettled.bulk_write(
            [
                DeleteOne({"_id": r.vin})
                if r.state is State.ARCHIVED
                else ReplaceOne({"_id": r.vin}, unsettled_entry(r), upsert=True)
                for r in records
            ],
            ordered=False,
        )
        self.journal.note(r.vin for r in records)

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

    def _remember(self, vins: set[str]) -> None:
        if len(self._known) + len(vins) > KNOWN_VINS:
            self._known.clear()
        self._known.update(vins)
