"""The worklists and state lists on the real FerretDB: a view read once, then following the writers' journals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from services.status.adapters.store import StatusStore
from services.status.adapters.worklists import Worklists
from services.status.worklist import ListQuery
from shared.contracts import Owner
from shared.contracts.events import State
from tests.findings import APPROVAL, COLOUR, MASS
from tests.findings import TYRE as TYRE_ALSO
from tests.integration.status.conftest import StoreFactory
from tests.integration.status.helpers import T0, apply_all, blocked, event

pytestmark = pytest.mark.integration

WAIT_S = 30.0  # a list request here waits for the view to follow every write (the service waits 50 ms)


def lists(store: StatusStore) -> Worklists:
    return Worklists(store.listed, store.journal, wait_s=WAIT_S)


async def test_worklist_lists_open_findings_of_one_team_oldest_first(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await apply_all(
        store,
        [
            blocked(vin(4), MASS, APPROVAL, minutes=4),
            blocked(vin(2), MASS, vehicle_group="VAN", minutes=2),
            blocked(vin(3), APPROVAL, minutes=3),
            event(vin(5), "validation", State.NEEDS_REVIEW, findings=(COLOUR,), owner=Owner.COMPLIANCE),
            event(vin(6), "validation", State.HELD, minutes=6, findings=(MASS,), owner=Owner.PRODUCTION),
            # resolved: blocked on mass, then corrected and validated as revision 2
            blocked(vin(1), MASS),
            event(vin(1), "validation", State.VALIDATED, revision=2, minutes=5),
        ],
    )
    worklists = lists(store)
    production = await worklists.page(ListQuery(Owner.PRODUCTION))
    assert [item["vin"] for item in production["items"]] == [vin(2), vin(4), vin(6)]
    assert (production["owner"], production["total"], production["page"], production["size"]) == (
        "production",
        3,
        1,
        50,
    )
    first = production["items"][0]
    assert (first["record_id"], first["state"], first["vehicle_group"]) == (f"{vin(2)}:1", "blocked", "VAN")
    assert first["updated_at"] == T0 + dt.timedelta(minutes=2) and first["age_s"] > 0
    assert all(f["owner"] == "production" for item in production["items"] for f in item["findings"])
    assert [f["code"] for f in production["items"][1]["findings"]] == [
        "MASS_ABOVE_MAX"
    ]  # not vin 4's approval
    assert set(production["items"][1]["findings"][0]) >= {"code", "path", "message", "severity"}

    type_approval = await worklists.page(ListQuery(Owner.TYPE_APPROVAL))
    assert [(item["vin"], item["state"]) for item in type_approval["items"]] == [
        (vin(3), "blocked"),
        (vin(4), "blocked"),
    ]
    assert [item["vin"] for item in (await worklists.page(ListQuery(Owner.COMPLIANCE)))["items"]] == [vin(5)]
    assert (await worklists.page(ListQuery(Owner.INTEGRATION)))["items"] == []


async def test_worklist_filters_and_pages_on_the_server(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await apply_all(
        store,
        [blocked(vin(n), MASS, minutes=n, vehicle_group="VAN" if n % 3 == 0 else "CHR") for n in range(1, 10)]
        + [blocked(vin(10), APPROVAL, TYRE_ALSO, minutes=10)],
    )
    worklists = lists(store)

    async def vins(**filters: Any) -> tuple[list[str], int]:
        answer = await worklists.page(ListQuery(Owner.PRODUCTION, **filters))
        return [item["vin"] for item in answer["items"]], answer["total"]

    everything = [vin(n) for n in range(1, 11)]
    assert await vins() == (everything, 10)
    assert await vins(size=4) == (everything[:4], 10)
    assert await vins(size=4, page=3) == (everything[8:], 10)
    assert await vins(group="VAN") == ([vin(3), vin(6), vin(9)], 3)
    assert await vins(code="TYRE_UNLISTED") == ([vin(10)], 1)
    assert await vins(group="VAN", size=2, page=2) == ([vin(9)], 3)
    assert await vins(min_age_s=10**9) == ([], 0)  # events of 2026-11-26 are days, not decades, old


async def test_worklist_follows_records_that_leave_and_enter_it(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    worklists = lists(store)
    await store.records.apply(blocked(vin(1), MASS))
    assert [i["vin"] for i in (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"]] == [vin(1)]
    await store.records.apply(event(vin(1), "validation", State.VALIDATED, revision=2, minutes=5))
    assert (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"] == []
    await store.records.apply(blocked(vin(2), MASS))
    assert [i["vin"] for i in (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"]] == [vin(2)]


async def test_lists_follow_two_writers_through_their_journals_without_reading_everything_again(
    stores: StoreFactory, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = stores("shared")
    second = StatusStore.on(first.kept.records)  # another status process on the same read model
    await first.records.apply_many([blocked(vin(n), MASS, minutes=n) for n in (1, 2, 3)])
    worklists = lists(StatusStore.on(first.kept.records))  # the reader: a third process
    whole_reads = 0
    read_whole = worklists.listed.view

    async def counted() -> Any:
        nonlocal whole_reads
        whole_reads += 1
        return await read_whole()

    monkeypatch.setattr(worklists.listed, "view", counted)

    async def listed(query: ListQuery) -> list[str]:
        return [item["vin"] for item in (await worklists.page(query))["items"]]

    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(1), vin(2), vin(3)]
    await second.records.apply(event(vin(1), "validation", State.VALIDATED, revision=2, minutes=9))
    await first.records.apply(blocked(vin(2), MASS, minutes=10, revision=2))
    await second.records.apply(event(vin(4), "intake", State.RECEIVED, minutes=11))
    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(3), vin(2)]
    assert await listed(ListQuery(None, State.VALIDATED)) == [vin(1)]
    assert await listed(ListQuery(None, State.RECEIVED)) == [vin(4)]
    await first.records.apply(event(vin(1), "archive", State.ARCHIVED, revision=2, minutes=12))
    assert await listed(ListQuery(None, State.VALIDATED)) == []
    assert whole_reads == 1
    heads = await first.journal.heads()
    assert heads == {first.journal.writer: 3, second.journal.writer: 2}
    first_entry = await first.kept.journal.find_one({"_id": f"{first.journal.writer}:{1:012d}"})
    assert first_entry is not None and first_entry["vins"] == [vin(1), vin(2), vin(3)]

    # A journal entry the reader had not followed is gone (pruned): it reads everything again.
    await second.records.apply(blocked(vin(5), MASS, minutes=13))
    await second.kept.journal.delete_one({"_id": f"{second.journal.writer}:{3:012d}"})
    await second.records.apply(blocked(vin(6), MASS, minutes=14))
    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(3), vin(2), vin(5), vin(6)]
    assert whole_reads == 2
