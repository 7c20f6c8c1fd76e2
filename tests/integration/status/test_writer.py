"""The status records on the real FerretDB: events folded and written, in bulk and alone, order-proof and race-proof."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from services.status.adapters import writer
from services.status.adapters.documents import from_document
from services.status.adapters.store import StatusStore
from services.status.fold import StatusRecord, fold
from shared.contracts.events import State
from tests.findings import MASS
from tests.integration.status.conftest import StoreFactory
from tests.integration.status.helpers import (
    T0,
    apply_all,
    blocked,
    counters,
    documents,
    event,
    history,
    stored_tallies,
    straight_through,
    unsettled_vins,
)

pytestmark = pytest.mark.integration


async def test_applied_events_are_read_back_as_one_document_per_vin(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await store.records.apply(event(vin(1), "intake", State.RECEIVED))
    stored = await store.records.apply(blocked(vin(1), MASS))
    assert stored is not None

    doc = await store.records.get(vin(1))
    assert doc == stored
    assert (doc.revision, doc.state, doc.stage, doc.owner, doc.seq) == (
        1,
        "blocked",
        "validation",
        "production",
        2,
    )
    assert doc.findings == (MASS,)
    assert doc.updated_at == T0 + dt.timedelta(minutes=1)
    assert [(e.stage, e.state) for e in doc.timeline] == [
        ("intake", "received"),
        ("validation", "blocked"),
    ]
    assert await store.kept.records.count_documents({}) == 1
    assert await store.records.get(vin(2)) is None


async def test_event_that_changes_nothing_is_not_written(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await store.records.apply(event(vin(1), "render", State.RENDERED, minutes=2))
    assert await store.records.apply(event(vin(1), "render", State.RENDERED, minutes=2)) is None
    assert await store.records.apply(event(vin(1), "archive", State.ARCHIVED, revision=0, minutes=9)) is None
    doc = await store.records.get(vin(1))
    assert doc is not None and (doc.state, doc.seq) == ("rendered", 1)


async def test_events_of_one_vin_in_a_batch_are_one_write_of_the_record_they_all_fold_into(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    events = straight_through(vin(1))
    batched, alone = stores("batched"), stores("alone")
    assert await batched.records.apply_many(events[:3]) == 1  # new: one insert
    assert await batched.records.apply_many(events[3:]) == 1  # known: one guarded replace
    await apply_all(alone, events)  # one write per event
    stored = await batched.records.get(vin(1))
    assert stored is not None and (stored.state, stored.seq) == (State.ARCHIVED, 5)
    assert await documents(batched) == await documents(alone)
    assert await counters(batched) == await counters(alone) == await stored_tallies(alone)


def state_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what depends on how many writes it took (seq) or which events won in between."""
    return {key: value for key, value in doc.items() if key not in ("seq", "timeline")}


async def test_same_events_twice_or_in_any_order_give_the_same_documents(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    events = history(vin)
    in_order = stores("in_order")
    await apply_all(in_order, events)
    expected = await documents(in_order)
    assert {key: doc["state"] for key, doc in expected.items()} == {
        vin(1): "archived",
        vin(2): "blocked",
        vin(3): "rejected",
        vin(4): "failed",
    }
    assert [f["code"] for f in expected[vin(2)]["findings"]] == ["MASS_ABOVE_MAX"]
    assert (expected[vin(1)]["revision"], expected[vin(4)]["vehicle_group"]) == (2, "VAN")

    await apply_all(in_order, events)
    assert await documents(in_order) == expected  # a redelivery writes nothing, not even seq

    for seed in range(3):
        shuffled = events.copy()
        random.Random(seed).shuffle(shuffled)
        store = stores(f"shuffled_{seed}")
        await apply_all(store, shuffled)
        found = await documents(store)
        assert {k: state_of(d) for k, d in found.items()} == {k: state_of(d) for k, d in expected.items()}
        assert all(found[k]["timeline"][-1] == expected[k]["timeline"][-1] for k in expected)


async def assert_archived_with_group(store: StatusStore, vin: str) -> None:
    doc = await store.records.get(vin)
    assert doc is not None
    assert (doc.state, doc.stage, doc.vehicle_group, doc.build_id) == (
        "archived",
        "archive",
        "CHR",
        f"B-{vin}-1",
    )
    assert doc.timeline[-1].stage == "archive"


async def test_concurrent_writers_of_a_new_vin_end_with_the_event_that_speaks_for_it(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    # All five read "no document": four inserts fail on _id, and those events are folded again.
    await asyncio.gather(*(store.records.apply(each) for each in reversed(straight_through(vin(1)))))
    await assert_archived_with_group(store, vin(1))


async def test_concurrent_writers_of_a_known_vin_end_with_the_event_that_speaks_for_it(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    first, *rest = straight_through(vin(1))
    await store.records.apply(first)
    # All four read seq 1: three replaces match nothing, and those events are folded again.
    await asyncio.gather(*(store.records.apply(each) for each in rest))
    await assert_archived_with_group(store, vin(1))


async def test_a_write_of_a_record_another_process_changed_meanwhile_is_refused_then_folded_again(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    received, validated, rendered = straight_through(vin(1))[:3]
    await store.records.apply(received)
    read_before = await store.records.get(vin(1))
    assert read_before is not None
    other = StatusStore.on(store.kept.records)  # a second status process after a rebalance
    await other.records.apply(validated)
    folded = fold(read_before, rendered)
    assert folded is not None
    assert not await store.records._write(read_before, folded)  # guarded by the seq it read: refused
    kept = await store.records.get(vin(1))
    assert kept is not None and (kept.state, kept.seq) == (State.VALIDATED, 2)
    await store.records.apply(rendered)  # folded again onto what the other process wrote
    now = await store.records.get(vin(1))
    assert now is not None
    assert (now.state, now.seq) == (State.RENDERED, 3)
    assert [entry.stage for entry in now.timeline] == ["intake", "validation", "render"]


async def test_a_bulk_fold_writes_the_records_no_one_changed_and_folds_the_other_again(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    vins = [vin(n) for n in range(1, 6)]
    await store.records.apply_many([event(each, "intake", State.RECEIVED) for each in vins])
    monkeypatch.setattr(writer, "CHUNK", 2)  # three bulk reads and writes
    other = StatusStore.on(store.kept.records)  # a second status process after a rebalance
    replace_guarded = store.records._replace_guarded

    async def vin_3_written_meanwhile(
        folded: Mapping[str, tuple[StatusRecord, StatusRecord]],
    ) -> set[str]:
        if vin(3) in folded:
            await other.records.apply(blocked(vin(3), MASS, minutes=1))
        return await replace_guarded(folded)

    monkeypatch.setattr(store.records, "_replace_guarded", vin_3_written_meanwhile)
    validated = [event(each, "validation", State.VALIDATED, minutes=2) for each in vins]
    assert await store.records.apply_many(validated) == 5
    stored = await store.records.get_many(vins)
    assert {each: (r.state, r.seq) for each, r in stored.items()} == {
        **{each: (State.VALIDATED, 2) for each in vins},
        vin(3): (State.VALIDATED, 3),  # the other process's blocked, then ours on top of it
    }
    assert [entry.state for entry in stored[vin(3)].timeline] == [
        State.RECEIVED,
        State.BLOCKED,
        State.VALIDATED,
    ]
    assert {doc["_id"]: doc["state"] async for doc in store.kept.unsettled.find({})} == dict.fromkeys(
        vins, "validated"
    )
    assert await counters(store) == await stored_tallies(store)


async def test_a_record_kept_as_fields_before_packing_is_read_and_folded_onto(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    received, validated, rendered = straight_through(vin(1))[:3]
    await store.records.apply(received)
    await store.records.apply(validated)
    packed = await store.kept.records.find_one({"_id": vin(1)})
    assert packed is not None and set(packed) == {"_id", "seq", "json"}
    before = from_document(packed)
    await store.kept.records.replace_one({"_id": vin(1)}, before.model_dump())  # as kept before 2026-12-01
    assert await store.records.get(vin(1)) == before
    await store.records.apply(rendered)
    now = await store.records.get(vin(1))
    assert now is not None and (now.state, now.seq, len(now.timeline)) == (State.RENDERED, 3, 3)
    assert "json" in (await store.kept.records.find_one({"_id": vin(1)}) or {})


async def test_new_vins_are_written_in_bulk_and_a_vin_another_process_wrote_is_folded_into_its_record(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    first, second = stores("first"), stores("first")  # two processes on the same collections
    await first.records.apply_many([event(vin(1), "intake", State.RECEIVED), blocked(vin(1), MASS)])

    # The second process has never seen vin 1: it tries it as new, the index refuses it, and
    # the event is folded into the stored record instead of starting one afresh.
    written = await second.records.apply_many(
        [event(vin(1), "validation", State.VALIDATED, minutes=5), *straight_through(vin(2))[:2]]
    )
    assert written == 2
    one = await second.records.get(vin(1))
    assert one is not None and [step.state for step in one.timeline] == ["received", "blocked", "validated"]
    two = await second.records.get(vin(2))
    assert two is not None and two.state == "validated" and two.vehicle_group == "CHR"
    assert await counters(second) == await stored_tallies(second)
    assert await unsettled_vins(second) == {vin(1), vin(2)}
    await second.records.apply_many(straight_through(vin(2)))  # known now: the rest by the single path
    assert await unsettled_vins(second) == {vin(1)}
    assert await counters(second) == await stored_tallies(second)


async def test_a_record_written_by_another_process_during_a_bulk_insert_keeps_its_entries_right(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    other, late = stores("race"), stores("race")
    await other.records.apply_many(straight_through(vin(1)))  # archived, written by the other process
    # As if the other's record landed between this process's index insert and its record insert:
    # the index entry is gone, the record stands. The bulk insert of the record then loses.
    await other.kept.index.delete_one({"_id": vin(1)})

    assert await late.records.apply_many([event(vin(1), "intake", State.RECEIVED, minutes=-5)]) == 0
    entry = await late.kept.index.find_one({"_id": vin(1)})
    assert entry is not None and entry["state"] == "archived", "entries follow the stored record"
    assert await unsettled_vins(late) == set()
