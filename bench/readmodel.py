"""How fast the status read model answers the board, a worklist page and a record page, at scale.

    python -m bench.readmodel --records 1000000 [--db NAME] [--reuse] [--calls 20]

Fills a database of its own (default ``coc_bench_readmodel``, on the MongoDB the
settings point at) with N status records shaped like real ones: about 80%
archived over the last 30 days, 10% waiting for a person (blocked, needs review,
held) with findings of the four teams, the rest on their way or failed, in six
vehicle groups. The documents are the store's own (``to_document``,
``index_entry``, ``unsettled_entry``), inserted in chunks with ``insert_many``
(FerretDB takes about 2,500 documents a second that way, so a million takes
minutes); the counters are then made by the store's own recount, which is timed
too. Filling is resumable: a progress document says how far it got, and a
chunk inserted twice only meets duplicate keys. ``--reuse`` times an existing
filled database without filling.

Then each call is timed ``--calls`` times, median and 95th percentile, as the
status API makes it: readiness from the counters, a worklist page (first and a
later one, with and without filters; the first whole read of the unsettled
records is timed once on its own), a state list page, a record read by VIN, and
a worklist page right after ten records changed (each blocked again under a new
revision through the store's own fold), which the view follows through the
journal; that page's time is the page alone, not the ten folds before it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import BulkWriteError

from bench.pipeline import percentile
from services.status.adapters.documents import COLLECTION, index_entry, to_document, unsettled_entry
from services.status.adapters.store import StatusStore
from services.status.adapters.worklists import Worklists
from services.status.fold import StatusRecord, TimelineEntry
from services.status.worklist import ListQuery
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import State, StatusEvent
from shared.mongo import MongoDoc, make_client
from shared.settings import CocSettings

CHUNK = 2_000
GROUPS = ["CHR", "VAN", "SUV", "TRUCK", "BUS", "EVX"]
GROUP_WEIGHTS = [40, 20, 20, 10, 5, 5]
STAGES = [
    ("intake", State.RECEIVED),
    ("validation", State.VALIDATED),
    ("render", State.RENDERED),
    ("signing", State.SIGNED),
    ("archive", State.ARCHIVED),
]
FINDINGS = [
    Finding(
        code="ACTUAL_MASS_MISSING",
        path="CocDataGroup/MassGroup/ActualMass",
        message="actual mass is missing; production must weigh the vehicle",
        severity=Severity.ERROR,
        owner=Owner.PRODUCTION,
    ),
    Finding(
        code="MASS_ABOVE_MAX",
        path="CocDataGroup/MassGroup/ActualMass",
        message="actual mass 1650 kg exceeds the approved maximum 1600 kg",
        severity=Severity.ERROR,
        owner=Owner.PRODUCTION,
    ),
    Finding(
        code="APPROVAL_UNKNOWN",
        path="CocDataGroup/TypeApprovalNumber",
        message="no approval e1*2018/858*00001*01; publish it",
        severity=Severity.ERROR,
        owner=Owner.TYPE_APPROVAL,
    ),
    Finding(
        code="COLOUR_UNLISTED",
        path="CocDataGroup/ColourOfVehicle",
        message="colour 'sunset' is not among the approved colours; accept or correct",
        severity=Severity.WARNING,
        owner=Owner.COMPLIANCE,
    ),
    Finding(
        code="SEAL_CERT_EXPIRING",
        path="Signature",
        message="the seal certificate expires in 10 days; integration must renew it",
        severity=Severity.WARNING,
        owner=Owner.INTEGRATION,
    ),
]


def blocked_again(vin: str, revision: int) -> StatusEvent:
    """A new revision of the VIN blocked on its mass: it moves to the end of the production worklist."""
    return StatusEvent(
        vin=vin,
        record_id=f"{vin}:{revision}",
        revision=revision,
        stage="validation",
        state=State.BLOCKED,
        time=dt.datetime.now(dt.UTC),
        service="validation@bench:1",
        vehicle_group="CHR",
        build_id=f"B-{vin}-{revision}",
        findings=(FINDINGS[1],),
        owner=Owner.PRODUCTION,
    )


def vin_of(i: int) -> str:
    return f"WBENCH{i:011d}"


def record_of(i: int, base: dt.datetime) -> StatusRecord:
    """The i-th bench record, the same on every run with the same ``base`` time."""
    rng = random.Random(i)
    vin, group = vin_of(i), rng.choices(GROUPS, GROUP_WEIGHTS)[0]
    updated = base - dt.timedelta(seconds=rng.randrange(30 * 24 * 3600))
    updated = updated.replace(microsecond=updated.microsecond // 1000 * 1000)
    roll = rng.random()
    findings: tuple[Finding, ...] = ()
    if roll < 0.80:
        reached, state, stage = 5, State.ARCHIVED, "archive"
    elif roll < 0.90:
        state = rng.choices([State.BLOCKED, State.NEEDS_REVIEW, State.HELD], [6, 3, 1])[0]
        reached, stage = 2, "validation"
        findings = tuple(rng.sample(FINDINGS, rng.choice([1, 1, 2])))
    else:
        reached = rng.randrange(1, 5)
        stage, state = STAGES[reached - 1]
        if rng.random() < 0.2:
            state = State.FAILED
    timeline = tuple(
        TimelineEntry(
            revision=1,
            stage=name,
            state=state if n == reached - 1 else passed,
            time=updated - dt.timedelta(minutes=reached - 1 - n),
            service=f"{name}@bench:1",
            trace_id=f"{i:032x}",
        )
        for n, (name, passed) in enumerate(STAGES[:reached])
    )
    return StatusRecord(
        vin=vin,
        record_id=f"{vin}:1",
        revision=1,
        state=state,
        stage=stage,
        findings=findings,
        owner=findings[0].owner if findings else None,
        vehicle_group=group,
        build_id=f"B{i}",
        trace_id=f"{i:032x}",
        updated_at=updated,
        timeline=timeline,
        seq=reached,
    )


async def insert_new(collection: Any, docs: list[MongoDoc]) -> None:
    """Insert documents, unordered; ones already there (a resumed chunk) are skipped."""
    if not docs:
        return
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
            raise


async def fill(store: StatusStore, progress: Any, records: int) -> None:
    state = await progress.find_one({"_id": "fill"}) or {}
    base = state.get("base") or dt.datetime.now(dt.UTC).replace(microsecond=0)
    done = int(state.get("filled", 0))
    if done >= records:
        print(f"{done} records already filled", flush=True)
        return
    await progress.update_one({"_id": "fill"}, {"$set": {"base": base}}, upsert=True)
    began, started_at = time.monotonic(), done
    while done < records:
        end = min(records, done + CHUNK)
        batch = [record_of(i, base) for i in range(done, end)]
        await asyncio.gather(
            insert_new(store.kept.records, [to_document(r) for r in batch]),
            insert_new(store.kept.index, [index_entry(r) for r in batch]),
            insert_new(
                store.kept.unsettled, [unsettled_entry(r) for r in batch if r.state is not State.ARCHIVED]
            ),
        )
        done = end
        await progress.update_one({"_id": "fill"}, {"$set": {"filled": done}})
        rate = (done - started_at) / (time.monotonic() - began)
        print(
            f"filled {done}/{records} records ({rate:.0f}/s, {(records - done) / rate:.0f} s to go)",
            flush=True,
        )


async def timed(action: Callable[[int], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """Median and 95th percentile, in ms, of ``calls`` awaits of ``action(n)``."""
    took = []
    for n in range(calls):
        began = time.perf_counter()
        await action(n)
        took.append((time.perf_counter() - began) * 1000)
    return median_p95(took)


def median_p95(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 0.95)


async def run(args: argparse.Namespace) -> int:
    settings = CocSettings()
    client = make_client(settings, serverSelectionTimeoutMS=30_000, socketTimeoutMS=600_000)
    try:
        db = client[args.db]
        store = StatusStore.on(db[COLLECTION])
        progress = db["bench_progress"]
        if not args.reuse:
            await fill(store, progress, args.records)
            state = await progress.find_one({"_id": "fill"}) or {}
            if not state.get("counted"):
                began = time.monotonic()
                while not await store.counters.recount(grace_s=0):
                    await asyncio.sleep(1)
                print(f"recount of {args.records} records: {time.monotonic() - began:.1f} s", flush=True)
                await progress.update_one({"_id": "fill"}, {"$set": {"counted": True}})
        readiness = await store.counters.readiness()
        print(f"\n{readiness['total']} records; waiting per team: {readiness['waiting_by_owner']}")
        filled = int(((await progress.find_one({"_id": "fill"})) or {}).get("filled", readiness["total"]))

        worklists = Worklists(store.listed, store.journal)
        began = time.perf_counter()
        first = await worklists.page(ListQuery(Owner.PRODUCTION))
        view_ms = (time.perf_counter() - began) * 1000
        later_page = max(1, first["total"] // 50 // 2)
        rng = random.Random(7)

        async def record(_n: int) -> None:
            found = await store.records.get(vin_of(rng.randrange(filled)))
            assert found is not None
            found.model_dump(mode="json")

        async def changing(n: int) -> None:
            # As when the pipeline moves records: ten records changed since the last page, each
            # blocked again under a new revision (so the view follows the journal for them).
            for k in range(10):
                i = rng.randrange(filled)
                await store.records.apply(blocked_again(vin_of(i), revision=100 + n * 10 + k))
            began = time.perf_counter()
            await worklists.page(ListQuery(Owner.PRODUCTION))
            changed_ms.append((time.perf_counter() - began) * 1000)

        changed_ms: list[float] = []

        def page(**query: Any) -> Callable[[int], Awaitable[Any]]:
            return lambda _n: worklists.page(ListQuery(Owner.PRODUCTION, **query))

        def state_page(_n: int) -> Awaitable[Any]:
            return worklists.page(ListQuery(None, State.NEEDS_REVIEW, group="VAN"))

        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("readiness (board)", lambda _n: store.counters.readiness()),
            ("worklist production, page 1", page()),
            (f"worklist production, page {later_page}", page(page=later_page)),
            ("worklist + group=VAN, page 1", page(group="VAN")),
            (
                "worklist + group, code, min_age_s=1d, page 3",
                page(group="CHR", code="MASS_ABOVE_MAX", min_age_s=86400, page=3),
            ),
            ("state list needs_review + group=VAN, page 1", state_page),
            ("record by VIN", record),
        ]
        print(f"\n{'call':48} {'median ms':>10} {'p95 ms':>10}   ({args.calls} calls each)")
        print(f"{'worklist view taken (once, cold)':48} {view_ms:10.1f} {'':>10}")
        for name, action in cases:
            median, p95 = await timed(action, args.calls)
            print(f"{name:48} {median:10.1f} {p95:10.1f}")
        await timed(changing, args.calls)
        median, p95 = median_p95(changed_ms)
        print(f"{'worklist page 1 after 10 records changed':48} {median:10.1f} {p95:10.1f}")
        print(f"\nproduction worklist: {first['total']} records")
    finally:
        await client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readmodel", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to fill (default 100000)")
    parser.add_argument("--db", default="coc_bench_readmodel", help="database to fill and time (its own)")
    parser.add_argument("--reuse", action="store_true", help="time an already filled database, fill nothing")
    parser.add_argument("--calls", type=int, default=20, help="calls timed per case (default 20)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
