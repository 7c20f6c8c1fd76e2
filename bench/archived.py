"""How fast the archived list answers a search at scale: by plant days, country, group, cursor and page.

    python -m bench.archived --records 1000000 [--db NAME] [--reuse] [--calls 20]

Fills a database of its own (default ``coc_bench_archived``, on the MongoDB the
settings point at) with N archived vehicles over the last 30 plant days, in six
vehicle groups and ten destinations (weighted as the plants ship: most to
Germany and the UK, 2% with no intended country), as the status writer leaves
them: each vehicle's index entry, and its entries in the four lanes of its day
in runs of the vehicles one write archived together (``--per-write``, 100 by
default: a second of the fold at 100 builds/s), with the lanes' tops and
counters. The documents are the store's own (``index_entry``, ``entry_of``,
``lanes_of``), inserted with ``insert_many``; the record documents themselves
are not (the list never reads them). Not resumable: an interrupted fill is
dropped with ``--fresh``.

Then each search shape is timed ``--calls`` times (median and 95th percentile,
ms) through ``ArchivedLanes.page``, the call behind ``/v1/records?state=archived``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
from collections.abc import Awaitable
from typing import Any
from zoneinfo import ZoneInfo

from bench.readmodel import insert_new, median_p95, timed, vin_of
from services.status.adapters.documents import COLLECTION, index_entry
from services.status.adapters.store import StatusStore
from services.status.archived import ArchivedQuery, Position, entry_of, lanes_of, packed, plant_day
from services.status.fold import StatusRecord
from shared.contracts.events import State
from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings

PLANT = ZoneInfo("Africa/Johannesburg")
DAYS = 30
GROUPS = ["CHR", "VAN", "SUV", "TRUCK", "BUS", "EVX"]
GROUP_WEIGHTS = [40, 20, 20, 10, 5, 5]
COUNTRIES = ["D", "GB", "F", "NL", "I", "E", "B", "A", "S", None]
COUNTRY_WEIGHTS = [30, 25, 10, 8, 7, 6, 5, 4, 3, 2]
RECORD_TYPES = ["C", "I", "V"]
RECORD_TYPE_WEIGHTS = [90, 7, 3]
CHUNK = 2_000  # documents per insert_many


def record_of(i: int, at: dt.datetime) -> StatusRecord:
    rng = random.Random(i)
    vin = vin_of(i)
    return StatusRecord(
        vin=vin,
        record_id=f"{vin}:1",
        revision=1,
        state=State.ARCHIVED,
        stage="archive",
        vehicle_group=rng.choices(GROUPS, GROUP_WEIGHTS)[0],
        country=rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
        record_type=rng.choices(RECORD_TYPES, RECORD_TYPE_WEIGHTS)[0],
        build_id=f"B{i}",
        updated_at=at,
        seq=5,
    )


class Filler:
    """The documents of N archived vehicles, as the writer would have left them, inserted in chunks."""

    def __init__(self, store: StatusStore, per_write: int) -> None:
        self.store, self.per_write = store, per_write
        self.tops: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.index: list[MongoDoc] = []
        self.runs: list[MongoDoc] = []
        self.inserted = 0

    async def fill(self, records: int, now: dt.datetime) -> None:
        began = time.monotonic()
        start = now - dt.timedelta(days=DAYS)
        step = dt.timedelta(days=DAYS) / records  # vehicles archived evenly, oldest first
        for first in range(0, records, self.per_write):
            write = [
                record_of(i, (start + step * i).replace(microsecond=0))
                for i in range(first, min(records, first + self.per_write))
            ]
            self._write(write)
            if len(self.index) + len(self.runs) >= CHUNK * 4:
                await self._flush()
                rate = self.inserted / (time.monotonic() - began)
                done = first + len(write)
                print(
                    f"filled {done}/{records} vehicles, {self.inserted} documents ({rate:.0f}/s)", flush=True
                )
        await self._flush()
        lanes = [{"_id": f"lane|{name}", "n": self.counts[name], "top": t} for name, t in self.tops.items()]
        for chunk in range(0, len(lanes), CHUNK):
            await insert_new(self.store.kept.lanes, lanes[chunk : chunk + CHUNK])
        print(f"{len(self.tops)} lanes; filled in {time.monotonic() - began:.0f} s", flush=True)

    def _write(self, records: list[StatusRecord]) -> None:
        by_lane: dict[str, list[MongoDoc]] = {}
        for record in records:
            self.index.append(index_entry(record))
            for name in lanes_of(record, PLANT):
                by_lane.setdefault(name, []).append(entry_of(record))
                self.counts[name] = self.counts.get(name, 0) + 1
        for name, entries in by_lane.items():
            number = self.tops[name] = self.tops.get(name, 0) + 1
            self.runs.append({"_id": f"{name}|{number}", "entries": packed(entries)})

    async def _flush(self) -> None:
        kept = self.store.kept
        jobs = [
            insert_new(collection, docs[chunk : chunk + CHUNK])
            for collection, docs in ((kept.index, self.index), (kept.runs, self.runs))
            for chunk in range(0, len(docs), CHUNK)
        ]
        for start in range(0, len(jobs), 2):  # two requests at a time: the server has two cores
            await asyncio.gather(*jobs[start : start + 2])
        self.inserted += len(self.index) + len(self.runs)
        self.index, self.runs = [], []


async def follow(store: StatusStore, query: ArchivedQuery, pages: int) -> Position | None:
    """The cursor after ``pages`` pages of the search (None when it ends sooner)."""
    after = None
    for _ in range(pages):
        page = await store.archived.page(replace_after(query, after))
        if page["next"] is None:
            return None
        after = Position.parse(page["next"])
    return after


def replace_after(query: ArchivedQuery, after: Position | None) -> ArchivedQuery:
    q = query
    return ArchivedQuery(q.first, q.last, q.country, q.group, q.record_type, q.size, q.page, after)


async def run(args: argparse.Namespace) -> int:
    settings = CocSettings()
    client = make_client(settings, serverSelectionTimeoutMS=30_000, socketTimeoutMS=600_000)
    try:
        if args.fresh:
            await client.drop_database(args.db)
        db = client[args.db]
        store = StatusStore.on(db[COLLECTION], zone=PLANT)
        progress = db["bench_progress"]
        state = await progress.find_one({"_id": "fill"}) or {}
        if not args.reuse and not state.get("filled"):
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            await Filler(store, args.per_write).fill(args.records, now)
            await progress.update_one(
                {"_id": "fill"}, {"$set": {"filled": args.records, "now": now}}, upsert=True
            )
            state = await progress.find_one({"_id": "fill"}) or {}
        now = state["now"]
        today = dt.date.fromisoformat(plant_day(now, PLANT))
        week, month, year = (today - dt.timedelta(days=n) for n in (6, DAYS, 364))
        one_day = today - dt.timedelta(days=3)
        cursor_20 = await follow(store, ArchivedQuery(month, today), 20)
        shapes: list[tuple[str, ArchivedQuery]] = [
            ("a year up to today (the list's default), page 1", ArchivedQuery(year, today)),
            ("30 days, page 1", ArchivedQuery(month, today)),
            ("one day, page 1", ArchivedQuery(one_day, one_day)),
            ("7 days + country=D, page 1", ArchivedQuery(week, today, country="D")),
            ("30 days + group=BUS (5%), page 1", ArchivedQuery(month, today, group="BUS")),
            ("30 days + country=A + group=BUS (0.2%)", ArchivedQuery(month, today, country="A", group="BUS")),
            ("30 days + country=none (2%)", ArchivedQuery(month, today, country="none")),
            ("30 days, after 20 pages (cursor)", ArchivedQuery(month, today, after=cursor_20)),
            ("30 days, page 50 (page number)", ArchivedQuery(month, today, page=50)),
            ("30 days + record_type=V (3%, checked)", ArchivedQuery(month, today, record_type="V")),
            ("30 days, 200 per page", ArchivedQuery(month, today, size=200)),
        ]
        total = (await store.archived.page(ArchivedQuery(year, today)))["total"]
        print(f"\n{total} archived vehicles; {args.calls} calls per search\n")
        print(f"{'search (/v1/records?state=archived)':52} {'items':>6} {'median ms':>10} {'p95 ms':>10}")
        for name, query in shapes:
            answer = await store.archived.page(query)

            def call(_n: int, query: ArchivedQuery = query) -> Awaitable[Any]:
                return store.archived.page(query)

            median, p95 = await timed(call, args.calls)
            print(f"{name:52} {len(answer['items']):6} {median:10.1f} {p95:10.1f}", flush=True)
        await walk_all(store, ArchivedQuery(today, today, size=200))
    finally:
        await client.close()
    return 0


async def walk_all(store: StatusStore, query: ArchivedQuery) -> None:
    """Walk today's whole list by cursor at 200 a page: what an export of a day costs."""
    took: list[float] = []
    seen, after = 0, None
    while True:
        began = time.perf_counter()
        page = await store.archived.page(replace_after(query, after))
        took.append((time.perf_counter() - began) * 1000)
        seen += len(page["items"])
        if page["next"] is None:
            break
        after = Position.parse(page["next"])
    median, p95 = median_p95(took)
    print(
        f"\ntoday walked whole by cursor: {seen} vehicles in {len(took)} pages, {median:.1f} / {p95:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archived", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="archived vehicles (default 100000)")
    parser.add_argument("--db", default="coc_bench_archived", help="database to fill and time (its own)")
    parser.add_argument("--reuse", action="store_true", help="time an already filled database")
    parser.add_argument("--fresh", action="store_true", help="drop the database first")
    parser.add_argument("--per-write", type=int, default=100, help="vehicles per write of the fold")
    parser.add_argument("--calls", type=int, default=20, help="calls timed per search (default 20)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
