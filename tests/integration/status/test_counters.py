"""The board's counters on the real FerretDB: moved as records are written, equal to what they contribute, recounted."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from services.status.adapters.store import StatusStore
from services.status.adapters.writer import Written
from shared.contracts.events import DELIVERY_STATES, State, StatusEvent
from shared.mongo import serves_secondary_indexes
from tests.findings import APPROVAL, MASS
from tests.findings import TYRE as TYRE_ALSO
from tests.integration.status.conftest import StoreFactory
from tests.integration.status.helpers import (
    apply_all,
    blocked,
    counters,
    event,
    history,
    not_archived_vins,
    stored_tallies,
    straight_through,
    unsettled_vins,
)

pytestmark = pytest.mark.integration


async def test_readiness_counts_records_per_state_and_per_vehicle_group(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await apply_all(
        store,
        [
            event(vin(1), "validation", State.VALIDATED, vehicle_group="CHR"),
            event(vin(2), "archive", State.ARCHIVED, vehicle_group="CHR"),
            blocked(vin(3), MASS, vehicle_group="CHR"),
            blocked(vin(4), APPROVAL, vehicle_group="VAN"),
            event(vin(5), "intake", State.REJECTED, revision=0, reason="revision: not an integer"),
        ],
    )
    readiness = await store.counters.readiness()
    assert readiness["total"] == 5
    assert {state: n for state, n in readiness["by_state"].items() if n} == {
        "validated": 1,
        "archived": 1,
        "blocked": 2,
        "rejected": 1,
    }
    assert set(readiness["by_state"]) == {state.value for state in State if state not in DELIVERY_STATES}
    assert readiness["by_group"] == {
        "CHR": {"validated": 1, "archived": 1, "blocked": 1},
        "VAN": {"blocked": 1},
        "unknown": {"rejected": 1},
    }


async def test_readiness_answers_archived_and_open_findings_from_the_counters(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    recent = [event(vin(n), "archive", State.ARCHIVED, time=now - dt.timedelta(minutes=n)) for n in (1, 2)]
    earlier = event(vin(3), "archive", State.ARCHIVED, time=now - dt.timedelta(hours=3))
    await store.records.apply_many(
        [*recent, earlier, blocked(vin(4), MASS, TYRE_ALSO, APPROVAL), blocked(vin(5), MASS)]
    )
    readiness = await store.counters.readiness()
    assert (readiness["archived_last_hour"], readiness["archived_last_day"]) == (2, 3)
    assert readiness["open_findings_by_owner"] == {
        "type-approval": 1,
        "production": 3,
        "compliance": 0,
        "integration": 0,
    }
    assert readiness["waiting_by_owner"]["production"] == 2
    assert readiness["by_state"]["archived"] == 3 and readiness["total"] == 5


async def test_counters_equal_the_stored_records_after_in_order_shuffled_repeated_and_batched_events(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    events = history(vin)
    in_order = stores("in_order")
    await apply_all(in_order, events)
    expected = await stored_tallies(in_order)
    assert {key: n for key, n in expected.items() if key.startswith(("state", "waiting", "findings"))} == {
        "state|archived|CHR": 1,
        "state|blocked|CHR": 1,
        "state|rejected|unknown": 1,
        "state|failed|VAN": 1,
        "waiting|production": 1,
        "findings|production": 1,
    }
    assert await counters(in_order) == expected
    assert await unsettled_vins(in_order) == await not_archived_vins(in_order)
    assert len(await unsettled_vins(in_order)) == 3

    await apply_all(in_order, events)  # redelivered: nothing written, nothing counted twice
    assert await counters(in_order) == expected

    for seed in range(3):
        shuffled = events * 2
        random.Random(seed).shuffle(shuffled)
        store = stores(f"batched_{seed}")
        cut = sorted(random.Random(seed).sample(range(1, len(shuffled)), 4))
        for start, end in zip([0, *cut], [*cut, len(shuffled)], strict=True):
            await store.records.apply_many(shuffled[start:end])  # concurrent VINs within each batch
        assert await counters(store) == expected, f"seed {seed}"
        assert await unsettled_vins(store) == await not_archived_vins(in_order)


class CrashBeforeCounting(Exception):
    pass


async def test_recount_repairs_counters_a_crash_between_record_and_counter_left_wrong(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.records.apply(event(vin(1), "intake", State.RECEIVED))

    async def crash(_change: Any) -> None:
        raise CrashBeforeCounting

    with monkeypatch.context() as patched:
        patched.setattr(store.counters, "bump", crash)
        with pytest.raises(CrashBeforeCounting):
            await store.records.apply_many([blocked(vin(1), MASS), blocked(vin(2), APPROVAL)])
    # The batch comes again: the records are written already, so it folds to nothing.
    assert await store.records.apply_many([blocked(vin(1), MASS), blocked(vin(2), APPROVAL)]) == 0
    expected = await stored_tallies(store)
    assert await counters(store) != expected
    await store.kept.counts.insert_one(
        {"_id": "archived-min|2020-01-01T00:00", "n": 3}
    )  # long out of the window

    assert await store.counters.recount(grace_s=0.1) is True
    assert await counters(store) == expected
    assert await store.kept.counts.find_one({"_id": "archived-min|2020-01-01T00:00"}) is None
    assert await store.counters.recount(grace_s=0.1) is True and await counters(store) == expected


async def test_a_record_on_its_way_writes_its_index_entry_only_when_created_and_when_archived(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    """On its way a record is counted from its unsettled entry, so its index entry is not rewritten."""
    on_way, done = vin(1), vin(2)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)  # counted in the window
    for n, (stage, state) in enumerate(
        [("intake", State.RECEIVED), ("validation", State.VALIDATED), ("render", State.RENDERED)]
    ):
        moment = at + dt.timedelta(minutes=n)
        await store.records.apply_many(
            [event(on_way, stage, state, time=moment), event(done, stage, state, time=moment)]
        )
    await store.records.apply(event(done, "signing", State.SIGNED, time=at + dt.timedelta(minutes=3)))
    await store.records.apply_many(
        [event(done, "archive", State.ARCHIVED, time=at + dt.timedelta(minutes=4))]
    )

    index = {doc["_id"]: doc["state"] async for doc in store.kept.index.find({})}
    assert index == {on_way: "received", done: "archived"}
    assert await unsettled_vins(store) == {on_way}
    await store.kept.counts.delete_many({})  # the counters lost: a recount finds them from the entries
    assert await store.counters.recount(grace_s=0.1) is True
    assert await counters(store) == await stored_tallies(store)
    assert (await counters(store))["state|rendered|CHR"] == 1


async def test_recount_leaves_the_delivery_counters_it_cannot_count_from_the_entries(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)  # in the board's window
    await store.records.apply_many(
        [each.model_copy(update={"time": at}) for n in (1, 2) for each in straight_through(vin(n))]
    )
    await store.records.apply_many(
        [
            event(vin(1), "delivery", State.SUBMITTED, time=at, destination="NAP-DE"),
            event(vin(2), "delivery", State.DELIVERED, time=at, destination="NAP-DE"),
        ]
    )
    expected = await stored_tallies(store)
    assert {key: n for key, n in expected.items() if key.startswith("delivery|")} == {
        "delivery|submitted": 1,
        "delivery|delivered": 1,
    }
    assert await store.counters.recount(grace_s=0.1) is True
    assert await counters(store) == expected
    assert (await store.counters.readiness())["delivery_by_state"]["delivered"] == 1


async def test_a_failing_vin_of_a_batch_does_not_lose_the_counts_of_the_vins_written(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    replace = store.records._replace

    async def away_for_vin_2(by_vin: Mapping[str, list[StatusEvent]], written: Written) -> list[str]:
        if vin(2) in by_vin:
            raise ConnectionError("database away")
        return await replace(by_vin, written)

    await store.records.apply(
        event(vin(2), "intake", State.RECEIVED)
    )  # known: folded with those that have a record
    batch = [blocked(vin(1), MASS), blocked(vin(2), APPROVAL), event(vin(3), "intake", State.RECEIVED)]
    with monkeypatch.context() as patched:
        patched.setattr(store.records, "_replace", away_for_vin_2)
        with pytest.raises(ConnectionError):
            await store.records.apply_many(batch)
    await store.records.apply_many(batch)  # redelivered: only vin 2 is still to write
    assert await counters(store) == await stored_tallies(store)
    assert (await store.counters.readiness())["total"] == 3


@pytest.mark.parametrize("pause", [0, 1], ids=["before-the-documents-are-read", "after-they-are-read"])
async def test_recount_changes_nothing_while_writers_move_the_counters(
    store: StatusStore, vin: Callable[[int], str], pause: int
) -> None:
    await store.records.apply(event(vin(1), "intake", State.RECEIVED))
    await store.kept.counts.update_one({"_id": "state|received|CHR"}, {"$inc": {"n": 5}})  # a drift to repair
    pauses: list[float] = []

    async def a_write_meanwhile(seconds: float) -> None:
        """The recount's grace, in which this process writes (once, in the pause chosen)."""
        if len(pauses) == pause:
            await this.records.apply(blocked(vin(2), MASS))
        pauses.append(seconds)

    this = StatusStore.on(store.kept.records, sleep=a_write_meanwhile)  # a process whose recount is watched
    assert await this.counters.recount(grace_s=0.5) is False
    assert pauses == [0.5] * (pause + 1)
    assert (await this.counters.read())["state|received|CHR"] == 6  # left for a quiet moment
    assert await this.counters.recount(grace_s=0.5) is True
    assert await counters(store) == await stored_tallies(store)


async def test_secondary_indexes_exist_only_where_the_server_uses_them(store: StatusStore) -> None:
    indexes = (await store.kept.index.index_information()).values()
    keys = {tuple(field for field, _ in index["key"]) for index in indexes}
    if await serves_secondary_indexes(store.kept.records.database.client):
        assert {("state",), ("owners",), ("group",)} <= keys
    else:  # FerretDB: they would only make each write dearer
        assert keys <= {("_id",)}
