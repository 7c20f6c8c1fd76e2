"""The archived list on the real FerretDB: searched by plant day, country and group, paged by cursor."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.status.adapters.store import StatusStore
from services.status.archived import ArchivedQuery, Position
from shared.contracts.events import State, StatusEvent
from shared.mongo import database, make_client
from shared.settings import CocSettings
from tests.integration.status.helpers import event

pytestmark = pytest.mark.integration

PLANT = ZoneInfo("Africa/Johannesburg")  # UTC+2
DAY1, DAY2 = dt.date(2026, 12, 6), dt.date(2026, 12, 7)
# 22:30 UTC on 6 December is 00:30 on 7 December at the plant: the plant's day counts.
LATE = dt.datetime(2026, 12, 6, 22, 30, tzinfo=dt.UTC)
EARLY = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)

StoreOf = Callable[[str], StatusStore]


@pytest.fixture
async def plant_stores(settings: CocSettings, unique: str) -> AsyncIterator[StoreOf]:
    """A status process's read model in the plant's zone per call; the same name is the same collections."""
    client = make_client(settings)
    made: list[StatusStore] = []

    def make(name: str) -> StatusStore:
        store = StatusStore.on(database(client, settings)[f"status_records_{unique}_{name}"], zone=PLANT)
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            for collection in store.kept.all():
                await collection.drop()
        await client.close()


def archived(
    vin: str, at: dt.datetime, country: str | None, group: str = "CHR", revision: int = 1
) -> list[StatusEvent]:
    """A vehicle received (its group and country told) and archived at ``at``."""
    told: dict[str, Any] = {"country": country} if country else {}
    return [
        event(
            vin,
            "intake",
            State.RECEIVED,
            revision,
            time=at - dt.timedelta(minutes=5),
            vehicle_group=group,
            **told,
        ),
        event(vin, "archive", State.ARCHIVED, revision, time=at),
    ]


async def walk(store: StatusStore, query: ArchivedQuery) -> tuple[list[str], int, int]:
    """Every VIN of the search by following ``next``; its total; the pages it took."""
    vins: list[str] = []
    pages, total, after = 0, 0, None
    while True:
        page = await store.archived.page(
            ArchivedQuery(
                query.first, query.last, query.country, query.group, query.record_type, query.size, 1, after
            )
        )
        pages += 1
        total = page["total"]
        vins += [item["vin"] for item in page["items"]]
        if page["next"] is None:
            return vins, total, pages
        after = Position.parse(page["next"])


async def test_a_search_by_plant_day_country_and_group_walks_newest_first_by_cursor(
    plant_stores: StoreOf, vin: Callable[[int], str]
) -> None:
    store = plant_stores("main")
    events: list[StatusEvent] = []
    for n in range(7):  # 7 December at the plant, one minute apart: D, NL, D, NL...
        events += archived(vin(n), LATE + dt.timedelta(minutes=n), "D" if n % 2 == 0 else "NL")
    events += archived(vin(10), EARLY, "D", group="VAN")  # 6 December
    events += archived(vin(11), EARLY + dt.timedelta(minutes=1), None)  # no intended country
    await store.records.apply_many(events[:8])  # two batches: created, then some created and some not
    await store.records.apply_many(events[8:])

    everything = ArchivedQuery(DAY1, DAY2, size=3)
    vins, total, pages = await walk(store, everything)
    assert vins == [vin(n) for n in range(6, -1, -1)] + [vin(11), vin(10)]
    assert (total, pages) == (9, 3)
    assert (await walk(store, ArchivedQuery(DAY2, DAY2, country="NL", size=2)))[:2] == (
        [vin(5), vin(3), vin(1)],
        3,
    )
    assert (await walk(store, ArchivedQuery(DAY1, DAY2, country="D", group="VAN")))[:2] == ([vin(10)], 1)
    assert (await walk(store, ArchivedQuery(DAY1, DAY1, country="none")))[:2] == ([vin(11)], 1)
    page = await store.archived.page(ArchivedQuery(DAY1, DAY2, country="D", size=2, page=2))
    assert [item["vin"] for item in page["items"]] == [vin(2), vin(0)]
    first = (await store.archived.page(ArchivedQuery(DAY2, DAY2, size=1)))["items"][0]
    assert (first["record_id"], first["state"], first["country"], first["vehicle_group"]) == (
        f"{vin(6)}:1",
        "archived",
        "D",
        "CHR",
    )
    assert first["updated_at"] == LATE + dt.timedelta(minutes=6)


async def test_a_corrected_or_moved_vehicle_leaves_its_old_place_in_the_list_and_its_count(
    plant_stores: StoreOf, vin: Callable[[int], str]
) -> None:
    store = plant_stores("main")
    for n in range(3):
        for each in archived(vin(n), LATE + dt.timedelta(minutes=n), "D"):
            await store.records.apply(each)  # the path of single requests
    # vin(0) corrected: revision 2 waits; vin(1) archived again as revision 2 on 6 December's plant day
    await store.records.apply(event(vin(0), "intake", State.RECEIVED, 2, time=LATE + dt.timedelta(hours=1)))
    await store.records.apply_many(archived(vin(1), EARLY, "NL", revision=2))

    assert (await walk(store, ArchivedQuery(DAY2, DAY2)))[:2] == ([vin(2)], 1)
    assert (await walk(store, ArchivedQuery(DAY1, DAY2, country="D")))[:2] == ([vin(2)], 1)
    assert (await walk(store, ArchivedQuery(DAY1, DAY1, country="NL")))[:2] == ([vin(1)], 1)


async def test_two_processes_writing_one_lane_keep_every_vehicle(
    plant_stores: StoreOf, vin: Callable[[int], str]
) -> None:
    one, other = plant_stores("main"), plant_stores("main")
    await one.records.apply_many(archived(vin(1), LATE, "D"))
    await other.records.apply_many(archived(vin(2), LATE + dt.timedelta(minutes=1), "D"))  # learns the top
    await one.records.apply_many(archived(vin(3), LATE + dt.timedelta(minutes=2), "D"))  # its number is taken

    vins, total, _ = await walk(one, ArchivedQuery(DAY2, DAY2, country="D"))
    assert (sorted(vins), total) == ([vin(1), vin(2), vin(3)], 3)


async def test_a_recount_finds_the_lanes_counts_again_from_the_index_entries(
    plant_stores: StoreOf, vin: Callable[[int], str]
) -> None:
    store = plant_stores("main")
    await store.records.apply_many(archived(vin(1), LATE, "D") + archived(vin(2), EARLY, None))
    before = await store.counters.read_lanes()
    assert before["lane|2026-12-07|D|CHR"] == 1 and before["lane|2026-12-06|none|~"] == 1
    await store.kept.lanes.delete_one({"_id": "lane|2026-12-07|D|~"})  # as a crash before the $inc
    await store.kept.lanes.update_one({"_id": "lane|2026-12-06|~|~"}, {"$inc": {"n": 5}})
    # a vehicle archived before the lanes existed: its index entry was written without ``listed``
    old = {"_id": vin(9), "state": "archived", "group": "CHR", "owners": [], "updated_at": LATE}
    await store.kept.index.insert_one(old)
    assert await store.counters.recount(grace_s=0.1) is True
    assert await store.counters.read_lanes() == before
    assert (await walk(store, ArchivedQuery(DAY1, DAY2)))[1] == 2
