"""The readiness board's counters: moved by ``$inc`` as records are written, and counted again now and then.

The counters (``services.status.tally``) are small documents by ``_id``, one
per key; the board reads them all and no record. A write of records moves them
by the change of what the records contribute (``moving``); a recount counts
that again from the stored entries and corrects any drift (``recount``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from services.status.archived import lanes_at
from services.status.tally import (
    Tally,
    add,
    country_key,
    facet_keys,
    facets_of,
    hour_key,
    in_window,
    minute_key,
    owner_keys,
    readiness_of,
    record_type_key,
    state_key,
)
from services.status.worklist import WAITING
from shared.contracts.events import State
from shared.increments import Increments
from shared.mongo import MongoDoc, serves_secondary_indexes

RECOUNT_GRACE_S = 2.0  # longer than any writer takes from a record write to its counter update
# Kept by ``$inc`` alone: the entries a recount reads do not say where a certificate's delivery stands
# (a recount that corrected them would set them all to zero).
NOT_RECOUNTED = ("delivery|", "deliveries|")
LANE = "lane|"  # the archived list's counters: kept beside its lanes, not read by the board

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Counters:
    """The counters of one read model, and what of this process's writes they have yet to see.

    A recount needs to know whether this process wrote meanwhile: the counters
    keep that themselves, as two numbers every write passes through
    ``moving``: the moves begun so far, and those whose change is not applied
    yet. Nothing else is kept here but the moves waiting to be written.
    """

    def __init__(
        self,
        counts: AsyncCollection[MongoDoc],
        index: AsyncCollection[MongoDoc],
        unsettled: AsyncCollection[MongoDoc],
        sleep: Sleep = asyncio.sleep,
        lanes: AsyncCollection[MongoDoc] | None = None,
        zone: dt.tzinfo = dt.UTC,
    ) -> None:
        self.counts, self.index, self.unsettled = counts, index, unsettled
        self.lanes = lanes  # where the archived list's lane counters (``lane|``) are kept, beside their tops
        self.zone = zone  # the plant's, whose days the lanes are
        self._sleep = sleep
        self._counts = Increments(counts)
        self._lanes = Increments(lanes) if lanes is not None else None
        self._begun = 0  # moves begun in this process: a recount checks none began meanwhile
        self._open = 0  # moves whose change is not yet applied

    async def setup(self) -> None:
        """Indexes on the entries a recount reads, where the server uses them (see shared.mongo)."""
        if not await serves_secondary_indexes(self.index.database.client):
            return
        for field in ("state", "owners", "group"):
            await self.index.create_index(field)

    @contextlib.asynccontextmanager
    async def moving(self) -> AsyncIterator[Tally]:
        """Around a write of records: the change added to the tally yielded is applied on the way out.

        Also when the write fails part way: what was written by then counts, as
        its events, delivered again, fold to nothing and would never count it.
        """
        self._begun += 1
        self._open += 1
        change: Tally = {}
        try:
            yield change
        finally:
            try:
                await self.bump(change)
            finally:
                self._open -= 1

    async def bump(self, change: Mapping[str, int]) -> None:
        """Move each counter by its change: the counters' moves waiting at once in one bulk request.

        ``shared.increments`` merges the changes of the batches folded at the
        same time and writes them as one unordered bulk of upserts, one at a
        time per collection in this process: a batch moves sixty counters in
        one request instead of sixty.
        """
        lanes = {key: n for key, n in change.items() if n and key.startswith(LANE)}
        counts = {key: n for key, n in change.items() if n and key not in lanes}
        moves = [self._counts.move(counts)]
        if lanes:  # a lane's counter, moved here by a recount's correction, is kept in its lane's document
            moves.append(self._lanes.move(lanes) if self._lanes is not None else self._counts.move(lanes))
        await asyncio.gather(*moves)

    async def read(self) -> Tally:
        """Every counter (a small collection: groups × states, owners, a day of time buckets)."""
        return {doc["_id"]: int(doc.get("n", 0)) async for doc in self.counts.find({})}

    async def read_lanes(self) -> Tally:
        """The archived list's lane counters (four per plant day and filter combination, with their tops)."""
        if self.lanes is None:
            return {}
        found = self.lanes.find({}, {"n": 1})
        return {doc["_id"]: int(doc.get("n", 0)) async for doc in found if doc["_id"].startswith(LANE)}

    async def readiness(self) -> dict[str, Any]:
        """The readiness board from the counters: no record is read."""
        return readiness_of(await self.read(), dt.datetime.now(dt.UTC))

    async def facets(self) -> dict[str, list[str]]:
        """The groups, finding codes, record types and countries some record has now: no record is read."""
        return facets_of(await self.read())

    def _quiet_since(self, begun: int) -> bool:
        return self._begun == begun and not self._open

    async def recount(self, grace_s: float = RECOUNT_GRACE_S) -> bool:
        """Count again from the stored entries and correct the counters; False when writers were busy.

        Why: the counters move after the record is written, in a separate
        ``$inc`` (no transactions here). A crash between the two leaves the
        record written and the counters unmoved, and the redelivered events then
        fold to nothing, so no event would ever repair the count. The counters
        are a function of the stored documents, though (``tally``), so counting
        those again finds and corrects any drift.

        A correction is made only when no counter moved and this process began
        no write while the documents were read and ``grace_s`` after (longer than
        another process takes from its record write to its ``$inc``), and no
        write of this process is still to move its counters: then the
        documents and the counters describe the same moment, and adding the
        difference is exact even if writes resume at once. Old time buckets are
        deleted; the delivery counters are left as they are (``NOT_RECOUNTED``). The archived
        list's lane counters (``LANE``, beside the lanes) are counted from the archived index
        entries and corrected alike. Run at start and then every ``recount_s`` seconds
        (``run_recounts``); a busy pipeline postpones it to its next quiet moment,
        found cheaply first (counters still for ``grace_s``) before the documents
        are read (about 190 s at a million records on FerretDB).
        """
        begun = self._begun
        before = await self.read()
        await self._sleep(grace_s)
        if await self.read() != before or not self._quiet_since(begun):
            return False  # busy: not worth reading every document now
        now = dt.datetime.now(dt.UTC)
        counted = await self._count_documents(now)
        await self._sleep(grace_s)
        after = {**await self.read(), **await self.read_lanes()}
        if {k: n for k, n in after.items() if not k.startswith(LANE)} != before or not self._quiet_since(
            begun
        ):
            return False
        correction = {
            key: counted.get(key, 0) - after.get(key, 0)
            for key in counted.keys() | after.keys()
            if in_window(key, now) and not key.startswith(NOT_RECOUNTED)
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
        change of it writes; its index entry may be older (``writer.index_due``).
        The other records are counted from their index entries.
        """
        counted: Tally = {}
        unsettled: set[str] = set()
        fields = {"keys": 1, "state": 1, "vehicle_group": 1, "country": 1, "record_type": 1}
        async for entry in self.unsettled.find({}, fields):
            unsettled.add(entry["_id"])
            add(counted, _counted_anyway(entry["state"], entry.get("vehicle_group"), entry))
            if entry.get("state") in WAITING:
                keys = entry.get("keys", [])
                add(counted, owner_keys(key.partition("|")[0] for key in keys))
                add(counted, facet_keys(None, {key.partition("|")[2] for key in keys}))
        fields = {"state": 1, "group": 1, "updated_at": 1, "country": 1, "record_type": 1, "listed": 1}
        async for entry in self.index.find({}, fields):
            if entry["_id"] in unsettled:
                continue
            add(counted, _counted_anyway(entry["state"], entry.get("group"), entry))
            at = entry.get("updated_at")
            if entry["state"] == State.ARCHIVED.value and at is not None:
                add(counted, {key: 1 for key in (minute_key(at), hour_key(at)) if in_window(key, now)})
                if self.lanes is not None and entry.get("listed"):  # archived before the lanes: not in them
                    lanes = lanes_at(at, entry.get("country"), entry.get("group"), self.zone)
                    add(counted, {f"{LANE}{name}": 1 for name in lanes})
        return counted


def _counted_anyway(state: str, group: str | None, entry: MongoDoc) -> Tally:
    """What any record counts by its entry: its state per group, per country and per record type."""
    return {
        state_key(state, group): 1,
        country_key(state, entry.get("country")): 1,
        record_type_key(state, entry.get("record_type")): 1,
        **facet_keys(entry.get("record_type"), ()),
    }


async def run_recounts(counters: Counters, interval_s: float, busy_retry_s: float = 30.0) -> None:
    """Recount at start and every ``interval_s`` (sooner again when writers were busy), until cancelled.

    A failed recount (database away) is logged and tried again at the next
    turn: nothing is lost meanwhile, the counters only stay as they were.
    """
    while True:
        try:
            done = await counters.recount()
        except Exception:  # the loop must outlive a database outage; the next turn retries
            log.exception("status recount failed; trying again in %.0f s", busy_retry_s)
            done = False
        await asyncio.sleep(interval_s if done else min(busy_retry_s, interval_s))
