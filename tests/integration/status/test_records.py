"""The status read model on the real FerretDB: folds written, counted, listed, and order-proof.

The counters must equal what the stored records contribute (``tally``) after any
order of events, repeats and concurrent VINs; the open collection must hold
exactly the waiting records; a recount must repair counters a crash left behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from services.status.adapters import records
from services.status.adapters.records import StatusStore, Worklists, from_document
from services.status.fold import StatusRecord, fold
from services.status.tally import Tally, add, tallies
from services.status.worklist import ListQuery
from shared.contracts import Finding, Owner
from shared.contracts.events import DELIVERY_STATES, State, StatusEvent
from shared.mongo import database, make_client, serves_secondary_indexes
from shared.settings import CocSettings
from tests.findings import APPROVAL, COLOUR, MASS
from tests.findings import TYRE as TYRE_ALSO

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
WAIT_S = 30.0  # a list request here waits for the view to follow every write (the service waits 50 ms)

StoreFactory = Callable[[str], StatusStore]


@pytest.fixture
async def stores(settings: CocSettings, unique: str) -> AsyncIterator[StoreFactory]:
    """Stores on collections of this test only, dropped afterwards."""
    client = make_client(settings)
    made: list[StatusStore] = []

    def make(name: str) -> StatusStore:
        store = StatusStore(database(client, settings)[f"status_records_{unique}_{name}"])
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            for collection in (
                store.collection,
                store.index,
                store.unsettled,
                store.counts,
                store.journal,
                store.heads,
            ):
                await collection.drop()
        await client.close()


@pytest.fixture
async def store(stores: StoreFactory) -> StatusStore:
    made = stores("main")
    await made.setup()
    return made


@pytest.fixture
def vin(unique: str) -> Callable[[int], str]:
    return lambda n: f"WVW{unique.upper()}{n:02d}"


def event(
    vin: str,
    stage: str,
    state: State,
    revision: int = 1,
    minutes: int = 0,
    time: dt.datetime | None = None,
    **extra: Any,
) -> StatusEvent:
    if stage in ("intake", "validation") and revision > 0:
        extra.setdefault("vehicle_group", "CHR")
        extra.setdefault("build_id", f"B-{vin}-{revision}")
    return StatusEvent(
        vin=vin,
        record_id=f"{vin}:{revision}",
        revision=revision,
        stage=stage,
        state=state,
        time=time or T0 + dt.timedelta(minutes=minutes),
        service=f"{stage}@test:1",
        **extra,
    )


def blocked(vin: str, *findings: Finding, minutes: int = 1, **extra: Any) -> StatusEvent:
    return event(
        vin, "validation", State.BLOCKED, minutes=minutes, findings=findings, owner=findings[0].owner, **extra
    )


async def apply_all(store: StatusStore, events: list[StatusEvent]) -> None:
    for each in events:
        await store.apply(each)


async def test_applied_events_are_read_back_as_one_document_per_vin(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await store.apply(event(vin(1), "intake", State.RECEIVED))
    stored = await store.apply(blocked(vin(1), MASS))
    assert stored is not None

    doc = await store.get(vin(1))
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
    assert await store.collection.count_documents({}) == 1
    assert await store.get(vin(2)) is None


async def test_event_that_changes_nothing_is_not_written(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await store.apply(event(vin(1), "render", State.RENDERED, minutes=2))
    assert await store.apply(event(vin(1), "render", State.RENDERED, minutes=2)) is None
    assert await store.apply(event(vin(1), "archive", State.ARCHIVED, revision=0, minutes=9)) is None
    doc = await store.get(vin(1))
    assert doc is not None and (doc.state, doc.seq) == ("rendered", 1)


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
    readiness = await store.readiness()
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
    worklists = Worklists(store, wait_s=WAIT_S)
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
    worklists = Worklists(store, wait_s=WAIT_S)

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
    worklists = Worklists(store, wait_s=WAIT_S)
    await store.apply(blocked(vin(1), MASS))
    assert [i["vin"] for i in (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"]] == [vin(1)]
    await store.apply(event(vin(1), "validation", State.VALIDATED, revision=2, minutes=5))
    assert (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"] == []
    await store.apply(blocked(vin(2), MASS))
    assert [i["vin"] for i in (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"]] == [vin(2)]


async def test_lists_follow_two_writers_through_their_journals_without_reading_everything_again(
    stores: StoreFactory, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = stores("shared")
    second = StatusStore(first.collection)  # another status process on the same read model
    await first.apply_many([blocked(vin(n), MASS, minutes=n) for n in (1, 2, 3)])
    worklists = Worklists(StatusStore(first.collection), wait_s=WAIT_S)  # the reader: a third process
    whole_reads = 0
    read_whole = worklists.store.unsettled_view

    async def counted() -> Any:
        nonlocal whole_reads
        whole_reads += 1
        return await read_whole()

    monkeypatch.setattr(worklists.store, "unsettled_view", counted)

    async def listed(query: ListQuery) -> list[str]:
        return [item["vin"] for item in (await worklists.page(query))["items"]]

    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(1), vin(2), vin(3)]
    await second.apply(event(vin(1), "validation", State.VALIDATED, revision=2, minutes=9))
    await first.apply(blocked(vin(2), MASS, minutes=10, revision=2))
    await second.apply(event(vin(4), "intake", State.RECEIVED, minutes=11))
    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(3), vin(2)]
    assert await listed(ListQuery(None, State.VALIDATED)) == [vin(1)]
    assert await listed(ListQuery(None, State.RECEIVED)) == [vin(4)]
    await first.apply(event(vin(1), "archive", State.ARCHIVED, revision=2, minutes=12))
    assert await listed(ListQuery(None, State.VALIDATED)) == []
    assert whole_reads == 1
    heads = await first.journal_heads()
    assert heads == {first.writer: 3, second.writer: 2}
    first_entry = await first.journal.find_one({"_id": f"{first.writer}:{1:012d}"})
    assert first_entry is not None and first_entry["vins"] == [vin(1), vin(2), vin(3)]

    # A journal entry the reader had not followed is gone (pruned): it reads everything again.
    await second.apply(blocked(vin(5), MASS, minutes=13))
    await second.journal.delete_one({"_id": f"{second.writer}:{3:012d}"})
    await second.apply(blocked(vin(6), MASS, minutes=14))
    assert await listed(ListQuery(Owner.PRODUCTION)) == [vin(3), vin(2), vin(5), vin(6)]
    assert whole_reads == 2


def history(vin: Callable[[int], str]) -> list[StatusEvent]:
    """What the pipeline says about four vehicles, in the order it said it."""
    one, two, three, four = vin(1), vin(2), vin(3), vin(4)
    return [
        event(one, "intake", State.REJECTED, revision=0, reason="revision: not an integer"),
        event(one, "intake", State.RECEIVED, minutes=1),
        blocked(one, MASS, minutes=2),
        event(one, "intake", State.RECEIVED, revision=2, minutes=3),
        event(
            one,
            "validation",
            State.NEEDS_REVIEW,
            revision=2,
            minutes=4,
            findings=(COLOUR,),
            owner=Owner.COMPLIANCE,
        ),
        event(one, "validation", State.VALIDATED, revision=2, minutes=5),
        event(one, "render", State.RENDERED, revision=2, minutes=6),
        event(one, "signing", State.SIGNED, revision=2, minutes=7),
        event(one, "archive", State.ARCHIVED, revision=2, minutes=8),
        event(two, "intake", State.RECEIVED),
        blocked(two, APPROVAL, minutes=1),
        blocked(two, MASS, minutes=2),  # approval published, checked again: now the mass
        event(three, "intake", State.REJECTED, revision=0, reason="vin: field required"),
        event(four, "intake", State.RECEIVED, vehicle_group="VAN"),
        event(four, "validation", State.VALIDATED, minutes=1, vehicle_group="VAN"),
        event(four, "render", State.RENDERED, minutes=2),
        event(four, "signing", State.FAILED, minutes=3, reason="seal certificate expired"),
    ]


def state_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what depends on how many writes it took (seq) or which events won in between."""
    return {key: value for key, value in doc.items() if key not in ("seq", "timeline")}


async def documents(store: StatusStore) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: from_document(doc).model_dump() async for doc in store.collection.find()}


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


def straight_through(vin: str) -> list[StatusEvent]:
    """A clean record's way from intake to archive; only intake and validation know its group."""
    stages = [
        ("intake", State.RECEIVED),
        ("validation", State.VALIDATED),
        ("render", State.RENDERED),
        ("signing", State.SIGNED),
        ("archive", State.ARCHIVED),
    ]
    return [event(vin, stage, state, minutes=n) for n, (stage, state) in enumerate(stages)]


async def assert_archived_with_group(store: StatusStore, vin: str) -> None:
    doc = await store.get(vin)
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
    await asyncio.gather(*(store.apply(each) for each in reversed(straight_through(vin(1)))))
    await assert_archived_with_group(store, vin(1))


async def test_concurrent_writers_of_a_known_vin_end_with_the_event_that_speaks_for_it(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    first, *rest = straight_through(vin(1))
    await store.apply(first)
    # All four read seq 1: three replaces match nothing, and those events are folded again.
    await asyncio.gather(*(store.apply(each) for each in rest))
    await assert_archived_with_group(store, vin(1))


async def test_a_write_of_a_record_another_process_changed_meanwhile_is_refused_then_folded_again(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    received, validated, rendered = straight_through(vin(1))[:3]
    await store.apply(received)
    read_before = await store.get(vin(1))
    assert read_before is not None
    other = StatusStore(store.collection)  # a second status process after a rebalance
    await other.apply(validated)
    folded = fold(read_before, rendered)
    assert folded is not None
    assert not await store._write(read_before, folded)  # guarded by the seq it read: refused
    kept = await store.get(vin(1))
    assert kept is not None and (kept.state, kept.seq) == (State.VALIDATED, 2)
    await store.apply(rendered)  # folded again onto what the other process wrote
    now = await store.get(vin(1))
    assert now is not None
    assert (now.state, now.seq) == (State.RENDERED, 3)
    assert [entry.stage for entry in now.timeline] == ["intake", "validation", "render"]


async def test_a_bulk_fold_writes_the_records_no_one_changed_and_folds_the_other_again(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    vins = [vin(n) for n in range(1, 6)]
    await store.apply_many([event(each, "intake", State.RECEIVED) for each in vins])
    monkeypatch.setattr(records, "CHUNK", 2)  # three bulk reads and writes
    other = StatusStore(store.collection)  # a second status process after a rebalance
    replace_guarded = store._replace_guarded

    async def vin_3_written_meanwhile(
        folded: Mapping[str, tuple[StatusRecord, StatusRecord]],
    ) -> set[str]:
        if vin(3) in folded:
            await other.apply(blocked(vin(3), MASS, minutes=1))
        return await replace_guarded(folded)

    monkeypatch.setattr(store, "_replace_guarded", vin_3_written_meanwhile)
    validated = [event(each, "validation", State.VALIDATED, minutes=2) for each in vins]
    assert await store.apply_many(validated) == 5
    stored = await store.get_many(vins)
    assert {each: (r.state, r.seq) for each, r in stored.items()} == {
        **{each: (State.VALIDATED, 2) for each in vins},
        vin(3): (State.VALIDATED, 3),  # the other process's blocked, then ours on top of it
    }
    assert [entry.state for entry in stored[vin(3)].timeline] == [
        State.RECEIVED,
        State.BLOCKED,
        State.VALIDATED,
    ]
    assert {doc["_id"]: doc["state"] async for doc in store.unsettled.find({})} == dict.fromkeys(
        vins, "validated"
    )
    assert await counters(store) == await stored_tallies(store)


async def test_a_record_kept_as_fields_before_packing_is_read_and_folded_onto(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    received, validated, rendered = straight_through(vin(1))[:3]
    await store.apply(received)
    await store.apply(validated)
    packed = await store.collection.find_one({"_id": vin(1)})
    assert packed is not None and set(packed) == {"_id", "seq", "json"}
    before = from_document(packed)
    await store.collection.replace_one({"_id": vin(1)}, before.model_dump())  # as kept before 2026-12-01
    assert await store.get(vin(1)) == before
    await store.apply(rendered)
    now = await store.get(vin(1))
    assert now is not None and (now.state, now.seq, len(now.timeline)) == (State.RENDERED, 3, 3)
    assert "json" in (await store.collection.find_one({"_id": vin(1)}) or {})


async def test_secondary_indexes_exist_only_where_the_server_uses_them(store: StatusStore) -> None:
    indexes = (await store.index.index_information()).values()
    keys = {tuple(field for field, _ in index["key"]) for index in indexes}
    if await serves_secondary_indexes(store.collection.database.client):
        assert {("state",), ("owners",), ("group",)} <= keys
    else:  # FerretDB: they would only make each write dearer
        assert keys <= {("_id",)}


async def stored_tallies(store: StatusStore) -> Tally:
    """What the stored records contribute to the counters (``tally``), counted from the records themselves."""
    summed: Tally = {}
    async for doc in store.collection.find():
        add(summed, tallies(from_document(doc)))
    return summed


async def counters(store: StatusStore) -> Tally:
    return {key: n for key, n in (await store.counters()).items() if n}


async def unsettled_vins(store: StatusStore) -> set[str]:
    return {doc["_id"] async for doc in store.unsettled.find({}, {"_id": 1})}


async def not_archived_vins(store: StatusStore) -> set[str]:
    return {
        doc["_id"] async for doc in store.collection.find() if from_document(doc).state is not State.ARCHIVED
    }


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
            await store.apply_many(shuffled[start:end])  # concurrent VINs within each batch
        assert await counters(store) == expected, f"seed {seed}"
        assert await unsettled_vins(store) == await not_archived_vins(in_order)


async def test_readiness_answers_archived_and_open_findings_from_the_counters(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    recent = [event(vin(n), "archive", State.ARCHIVED, time=now - dt.timedelta(minutes=n)) for n in (1, 2)]
    earlier = event(vin(3), "archive", State.ARCHIVED, time=now - dt.timedelta(hours=3))
    await store.apply_many(
        [*recent, earlier, blocked(vin(4), MASS, TYRE_ALSO, APPROVAL), blocked(vin(5), MASS)]
    )
    readiness = await store.readiness()
    assert (readiness["archived_last_hour"], readiness["archived_last_day"]) == (2, 3)
    assert readiness["open_findings_by_owner"] == {
        "type-approval": 1,
        "production": 3,
        "compliance": 0,
        "integration": 0,
    }
    assert readiness["waiting_by_owner"]["production"] == 2
    assert readiness["by_state"]["archived"] == 3 and readiness["total"] == 5


class CrashBeforeCounting(Exception):
    pass


async def test_recount_repairs_counters_a_crash_between_record_and_counter_left_wrong(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.apply(event(vin(1), "intake", State.RECEIVED))

    async def crash(_change: Any) -> None:
        raise CrashBeforeCounting

    with monkeypatch.context() as patched:
        patched.setattr(store, "bump", crash)
        with pytest.raises(CrashBeforeCounting):
            await store.apply_many([blocked(vin(1), MASS), blocked(vin(2), APPROVAL)])
    # The batch comes again: the records are written already, so it folds to nothing.
    assert await store.apply_many([blocked(vin(1), MASS), blocked(vin(2), APPROVAL)]) == 0
    expected = await stored_tallies(store)
    assert await counters(store) != expected
    await store.counts.insert_one({"_id": "archived-min|2020-01-01T00:00", "n": 3})  # long out of the window

    assert await store.recount(grace_s=0.1) is True
    assert await counters(store) == expected
    assert await store.counts.find_one({"_id": "archived-min|2020-01-01T00:00"}) is None
    assert await store.recount(grace_s=0.1) is True and await counters(store) == expected


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
        await store.apply_many(
            [event(on_way, stage, state, time=moment), event(done, stage, state, time=moment)]
        )
    await store.apply(event(done, "signing", State.SIGNED, time=at + dt.timedelta(minutes=3)))
    await store.apply_many([event(done, "archive", State.ARCHIVED, time=at + dt.timedelta(minutes=4))])

    index = {doc["_id"]: doc["state"] async for doc in store.index.find({})}
    assert index == {on_way: "received", done: "archived"}
    assert await unsettled_vins(store) == {on_way}
    await store.counts.delete_many({})  # the counters lost: a recount finds them from the entries
    assert await store.recount(grace_s=0.1) is True
    assert await counters(store) == await stored_tallies(store)
    assert (await counters(store))["state|rendered|CHR"] == 1


async def test_a_failing_vin_of_a_batch_does_not_lose_the_counts_of_the_vins_written(
    store: StatusStore, vin: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fold_known = store._fold_known

    async def away_for_vin_2(by_vin: Mapping[str, list[StatusEvent]]) -> tuple[Tally, int, list[str]]:
        if vin(2) in by_vin:
            raise ConnectionError("database away")
        return await fold_known(by_vin)

    await store.apply(event(vin(2), "intake", State.RECEIVED))  # known: folded with those that have a record
    batch = [blocked(vin(1), MASS), blocked(vin(2), APPROVAL), event(vin(3), "intake", State.RECEIVED)]
    with monkeypatch.context() as patched:
        patched.setattr(store, "_fold_known", away_for_vin_2)
        with pytest.raises(ConnectionError):
            await store.apply_many(batch)
    await store.apply_many(batch)  # redelivered: only vin 2 is still to write
    assert await counters(store) == await stored_tallies(store)
    assert (await store.readiness())["total"] == 3


async def test_recount_changes_nothing_while_writers_move_the_counters(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await store.apply(event(vin(1), "intake", State.RECEIVED))
    await store.counts.update_one({"_id": "state|received|CHR"}, {"$inc": {"n": 5}})  # a drift to repair
    recount = asyncio.create_task(store.recount(grace_s=0.5))
    await asyncio.sleep(0.1)
    await store.apply(blocked(vin(2), MASS))
    assert await recount is False
    assert (await store.counters())["state|received|CHR"] == 6  # left for a quiet moment
    assert await store.recount(grace_s=0.1) is True
    assert await counters(store) == await stored_tallies(store)


async def test_new_vins_are_written_in_bulk_and_a_vin_another_process_wrote_is_folded_into_its_record(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    first, second = stores("first"), stores("first")  # two processes on the same collections
    await first.apply_many([event(vin(1), "intake", State.RECEIVED), blocked(vin(1), MASS)])

    # The second process has never seen vin 1: it tries it as new, the index refuses it, and
    # the event is folded into the stored record instead of starting one afresh.
    written = await second.apply_many(
        [event(vin(1), "validation", State.VALIDATED, minutes=5), *straight_through(vin(2))[:2]]
    )
    assert written == 2
    one = await second.get(vin(1))
    assert one is not None and [step.state for step in one.timeline] == ["received", "blocked", "validated"]
    two = await second.get(vin(2))
    assert two is not None and two.state == "validated" and two.vehicle_group == "CHR"
    assert await counters(second) == await stored_tallies(second)
    assert await unsettled_vins(second) == {vin(1), vin(2)}
    await second.apply_many(straight_through(vin(2)))  # known now: the rest by the single path
    assert await unsettled_vins(second) == {vin(1)}
    assert await counters(second) == await stored_tallies(second)


async def test_a_record_written_by_another_process_during_a_bulk_insert_keeps_its_entries_right(
    stores: StoreFactory, vin: Callable[[int], str]
) -> None:
    other, late = stores("race"), stores("race")
    await other.apply_many(straight_through(vin(1)))  # archived, written by the other process
    # As if the other's record landed between this process's index insert and its record insert:
    # the index entry is gone, the record stands. The bulk insert of the record then loses.
    await other.index.delete_one({"_id": vin(1)})

    assert await late.apply_many([event(vin(1), "intake", State.RECEIVED, minutes=-5)]) == 0
    entry = await late.index.find_one({"_id": vin(1)})
    assert entry is not None and entry["state"] == "archived", "entries follow the stored record"
    assert await unsettled_vins(late) == set()
