"""The archived list's lanes in the database: runs entered as records are archived, and pages read by ``_id``.

Two collections beside the records (``documents.Collections``): ``_runs``, one
document per run (``<lane>|<run number>``, its entries oldest first), and
``_lanes``, one document per lane, ``lane|<lane>``: ``n``, the vehicles archived
in it now, and ``top``, the highest run number written. See
``services.status.archived`` for the lanes themselves.

Runs are numbered per lane by each writing process from what it knows
(``top`` read once per lane); the run is inserted as a claim, so two processes
never write the same number: the one refused takes the next. A batch's lane
documents are written once, at its end (``flush``): ``$inc`` of ``n`` by the
change of the records written and ``$max`` of ``top``, every lane in one bulk
write (a hundred vehicles archived touch about 80 lanes: as single requests
they cost the batch four times its own writes, measured). A run written above a
``top`` not yet raised (a batch still going, or a crash before its end) is found
all the same: a walk reads ``PROBE`` numbers above it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from services.status.adapters.documents import by_ids
from services.status.archived import (
    ArchivedQuery,
    Position,
    describes,
    entered,
    entry_of,
    lanes_of,
    packed,
    unpacked,
)
from services.status.fold import StatusRecord, StatusServiceError
from services.status.worklist import age_s
from shared.contracts.events import State
from shared.mongo import MongoDoc, insert_new

PROBE = 24  # run numbers read above a lane's top: runs of a batch not yet ended, or of one that crashed
RUNS_PER_READ = (2, 400)  # runs read in one request while a page fills: enough for it, by the lane's run size
MAX_READS = 12  # requests of runs one page may make before it answers with what it has (and ``next``)
DAYS_PER_READ = 1_000  # days whose lane documents are read in one ``$in`` (up to 1,000 ids)
LANE = "lane|"  # a lane's document: its vehicles now (``n``) and its top run number (``top``)
MAX_ATTEMPTS = 20
KNOWN_LANES = 100_000  # lane documents a process remembers exist (then it forgets them all and learns again)

Pair = tuple[StatusRecord | None, StatusRecord]


class LanesBusy(StatusServiceError):
    """Other processes kept taking the run numbers this one tried; the batch is folded again."""


@dataclass
class Walk:
    """A page being filled: the entries found so far and where the walk stands."""

    size: int
    items: list[MongoDoc] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    last: Position | None = None
    reads: int = 0
    per_run: float = 1.0  # vehicles per run in the lane being walked (its count over its top)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.size


class ArchivedLanes:
    """Enters archived records in their lanes (``enter``) and answers pages of the archived list (``page``)."""

    def __init__(
        self,
        runs: AsyncCollection[MongoDoc],
        lanes: AsyncCollection[MongoDoc],
        index: AsyncCollection[MongoDoc],
        zone: dt.tzinfo,
    ) -> None:
        self.runs, self.lanes, self.index, self.zone = runs, lanes, index, zone
        self._next: dict[str, int] = {}  # per lane this process wrote to: the run number it takes next
        self._numbering = asyncio.Lock()
        self._written: dict[str, int] = {}  # per lane, the highest run written since the last flush
        self._flushing = asyncio.Lock()  # one flush at a time: an update of a document is not atomic here
        self._known: set[str] = set()  # lane documents this process knows exist (``_write_lanes``)

    # -- writes -----------------------------------------------------------------------------

    async def enter(self, pairs: Iterable[Pair]) -> None:
        """Enter the records newly archived (or archived differently) in their lanes: one run per lane."""
        by_lane: dict[str, list[MongoDoc]] = {}
        for before, after in pairs:
            if entered(before, after, self.zone):
                for name in lanes_of(after, self.zone):
                    by_lane.setdefault(name, []).append(entry_of(after))
        for _ in range(MAX_ATTEMPTS):
            if not by_lane:
                return
            async with self._numbering:
                await self._learn([name for name in by_lane if name not in self._next])
                runs = {}
                for name, entries in by_lane.items():
                    number = self._next[name]
                    self._next[name] = number + 1
                    runs[f"{name}|{number}"] = (name, entries)
            stored = await insert_new(
                self.runs, [{"_id": key, "entries": packed(e)} for key, (_, e) in runs.items()]
            )
            for key in stored:
                name, _, number = key.rpartition("|")
                self._written[name] = max(self._written.get(name, 0), int(number))
            by_lane = {name: entries for key, (name, entries) in runs.items() if key not in stored}
        raise LanesBusy(f"{len(by_lane)} lanes: {MAX_ATTEMPTS} run numbers taken by other writers")

    async def _learn(self, names: Sequence[str]) -> None:
        tops = await by_ids(self.lanes, [f"{LANE}{name}" for name in names])
        for name in names:
            self._next[name] = int(tops.get(f"{LANE}{name}", {}).get("top", 0)) + 1

    async def flush(self, change: Mapping[str, int]) -> None:
        """Write the lanes' documents at a batch's end: ``n`` moved by ``change`` (``lane|<lane>`` keys),
        ``top`` raised to the runs written; one bulk write (``_write_lanes``)."""
        written, self._written = self._written, {}
        updates: dict[str, dict[str, Any]] = {}
        for key, n in change.items():
            if n:
                updates.setdefault(key, {})["$inc"] = {"n": n}
        for name, top in written.items():
            updates.setdefault(f"{LANE}{name}", {})["$max"] = {"top": top}
        if not updates:
            return
        try:
            async with self._flushing:
                await self._write_lanes(updates)
        except Exception:
            for name, top in written.items():  # perhaps not written: the next flush raises them
                self._written[name] = max(self._written.get(name, 0), top)
            raise

    async def _write_lanes(self, updates: Mapping[str, Mapping[str, Any]]) -> None:
        """One bulk write of the lanes' documents, those this process has not seen inserted first.

        So the bulk never creates a document: two processes upserting one new lane at
        once make one fail with a duplicate key, which FerretDB answers in a form the
        driver cannot read (no ``nModified``), leaving unknown which updates were made.
        """
        new = [key for key in updates if key not in self._known]
        if new:
            if len(self._known) + len(new) > KNOWN_LANES:
                self._known.clear()
            await insert_new(self.lanes, [{"_id": key, "n": 0, "top": 0} for key in new])
            self._known.update(new)
        await self.lanes.bulk_write(
            [UpdateOne({"_id": key}, update, upsert=True) for key, update in updates.items()],
            ordered=False,
        )

    # -- reads ------------------------------------------------------------------------------

    async def page(self, query: ArchivedQuery) -> dict[str, Any]:
        """One page of the search, newest first: the vehicles, the total of the search, and ``next``."""
        every = _days(query, None)
        counts, tops = await self._directory([query.lane(day) for day in every])
        total = sum(counts.values())
        walk = Walk(query.size)
        oldest = next((day for day in reversed(every) if counts.get(query.lane(day), 0) > 0), None)
        skip = (query.page - 1) * query.size if query.after is None else 0
        for day in query.days():
            name = query.lane(day)
            if counts.get(name, 0) <= 0:
                continue
            if skip >= counts[name]:
                skip -= counts[name]
                continue
            top = tops.get(name, 0) + PROBE
            walk.per_run = max(1.0, counts[name] / max(1, tops.get(name, 0)))
            start = query.after if query.after is not None and query.after.day == day else None
            await self._walk_day(query, name, day, top, start, skip, walk)
            skip = 0
            if walk.full or walk.reads >= MAX_READS:
                break
        more = walk.last is not None and (walk.full or walk.reads >= MAX_READS)
        if walk.last is not None and walk.last == Position(oldest or "", 1, 0):
            more = False  # the walk took the very first entry of the search: nothing is left
        return {
            "state": State.ARCHIVED.value,
            "items": walk.items,
            "total": total,
            "page": query.page,
            "size": query.size,
            "order": "newest first",
            "archived_from": query.first.isoformat(),
            "archived_to": query.last.isoformat(),
            "next": walk.last.token() if more and walk.last else None,
            "as_of": dt.datetime.now(dt.UTC).isoformat(),
        }

    async def _directory(self, names: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Per lane: vehicles in it now, and its top run number (its document, read by ``_id``)."""
        counts: dict[str, int] = {}
        tops: dict[str, int] = {}
        for start in range(0, len(names), DAYS_PER_READ):
            chunk = names[start : start + DAYS_PER_READ]
            found = await by_ids(self.lanes, [f"{LANE}{name}" for name in chunk])
            for name in chunk:
                counts[name] = int(found.get(f"{LANE}{name}", {}).get("n", 0))
                tops[name] = int(found.get(f"{LANE}{name}", {}).get("top", 0))
        return counts, tops

    async def _walk_day(
        self,
        query: ArchivedQuery,
        name: str,
        day: str,
        top: int,
        start: Position | None,
        skip: int,
        walk: Walk,
    ) -> None:
        """Walk the day's lane from its newest run (or from ``start``) down, adding what still holds."""
        run = start.run if start is not None else top
        probes = PROBE if start is None else 0
        while run >= 1 and not walk.full and walk.reads < MAX_READS:
            wanted = math.ceil(((walk.size - len(walk.items)) * 5 / 4 + skip) / walk.per_run) + 1 + probes
            numbers = list(range(run, max(0, run - min(max(wanted, RUNS_PER_READ[0]), RUNS_PER_READ[1])), -1))
            probes = 0
            docs = await by_ids(self.runs, [f"{name}|{n}" for n in numbers])
            walk.reads += 1
            candidates: list[tuple[Position, MongoDoc]] = []
            for number in numbers:
                doc = docs.get(f"{name}|{number}")
                entries = unpacked(doc["entries"]) if doc is not None else []
                last = len(entries) - 1
                if start is not None and number == start.run:
                    last = start.index - 1
                for index in range(last, -1, -1):
                    candidates.append((Position(day, number, index), entries[index]))
            if skip:
                dropped, skip = min(skip, len(candidates)), max(0, skip - len(candidates))
                candidates = candidates[dropped:]
            await self._keep(query, name, candidates, walk)
            run = numbers[-1] - 1

    async def _keep(
        self, query: ArchivedQuery, name: str, candidates: list[tuple[Position, MongoDoc]], walk: Walk
    ) -> None:
        """Add the candidates the vehicles' index entries still describe, until the page is full.

        The index entries are read for a slice at a time, a little more than the page still
        needs: a run of the lane of all vehicles may hold hundreds.
        """
        now = dt.datetime.now(dt.UTC)
        while candidates and not walk.full:
            need = (walk.size - len(walk.items)) * 5 // 4 + 4
            chosen, candidates = candidates[:need], candidates[need:]
            wanted = [e["vin"] for _, e in chosen if _typed(e, query) and e["vin"] not in walk.seen]
            index = await by_ids(self.index, sorted(set(wanted))) if wanted else {}
            for position, entry in chosen:
                if walk.full:
                    return
                walk.last = position
                vin = entry["vin"]
                if vin in walk.seen or not _typed(entry, query) or not describes(entry, index.get(vin), name):
                    continue
                walk.seen.add(vin)
                walk.items.append(_item(entry, now))


def _typed(entry: MongoDoc, query: ArchivedQuery) -> bool:
    return query.record_type is None or entry.get("record_type") == query.record_type


def _days(query: ArchivedQuery, after: Position | None) -> list[str]:
    """Every day of the search, newest first, whatever the cursor."""
    return ArchivedQuery(query.first, query.last, after=after).days()


def _item(entry: MongoDoc, now: dt.datetime) -> MongoDoc:
    """An archived vehicle as the lists show a record (no findings: an archived record has none open)."""
    at = entry["at"]
    if at.tzinfo is None:  # a client not made tz_aware: the stored time is UTC
        at = at.replace(tzinfo=dt.UTC)
    return {
        "vin": entry["vin"],
        "record_id": entry["record_id"],
        "revision": entry["revision"],
        "state": State.ARCHIVED.value,
        "vehicle_group": entry.get("group"),
        "record_type": entry.get("record_type"),
        "country": entry.get("country"),
        "updated_at": at,
        "age_s": age_s(at, now),
        "findings": [],
    }
