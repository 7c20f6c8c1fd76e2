"""The status read model on the real FerretDB: folds written, counted, listed, and order-proof."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.status.adapters.records import StatusStore
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import State, StatusEvent
from shared.mongo import database, make_client, serves_secondary_indexes
from shared.settings import CocSettings

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
MASS = Finding(
    code="MASS_ABOVE_MAX",
    path="CocDataGroup/MassGroup/ActualMass",
    message="actual mass 1650 kg exceeds the approved maximum 1600 kg",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)
APPROVAL = Finding(
    code="APPROVAL_UNKNOWN",
    path="CocDataGroup/TypeApprovalNumber",
    message="no approval e1*2018/858*00001*01; publish it",
    severity=Severity.ERROR,
    owner=Owner.TYPE_APPROVAL,
)
COLOUR = Finding(
    code="COLOUR_UNLISTED",
    path="CocDataGroup/ColourOfVehicle",
    message="colour 'sunset' is not among the approved colours; accept or correct",
    severity=Severity.WARNING,
    owner=Owner.COMPLIANCE,
)

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
            await store.collection.drop()
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
    vin: str, stage: str, state: State, revision: int = 1, minutes: int = 0, **extra: Any
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
        time=T0 + dt.timedelta(minutes=minutes),
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
    assert set(readiness["by_state"]) == {state.value for state in State}
    assert readiness["by_group"] == {
        "CHR": {"validated": 1, "archived": 1, "blocked": 1},
        "VAN": {"blocked": 1},
        "unknown": {"rejected": 1},
    }


async def test_worklist_lists_open_findings_of_one_team_by_vin(
    store: StatusStore, vin: Callable[[int], str]
) -> None:
    await apply_all(
        store,
        [
            blocked(vin(4), MASS, APPROVAL),
            blocked(vin(2), MASS, vehicle_group="VAN"),
            blocked(vin(3), APPROVAL),
            event(vin(5), "validation", State.NEEDS_REVIEW, findings=(COLOUR,), owner=Owner.COMPLIANCE),
            event(vin(6), "validation", State.HELD, findings=(MASS,), owner=Owner.PRODUCTION),
            # resolved: blocked on mass, then corrected and validated as revision 2
            blocked(vin(1), MASS),
            event(vin(1), "validation", State.VALIDATED, revision=2, minutes=5),
        ],
    )
    production = await store.worklist(Owner.PRODUCTION)
    assert [item["vin"] for item in production] == [vin(2), vin(4), vin(6)]
    first = production[0]
    assert (first["record_id"], first["state"], first["vehicle_group"]) == (f"{vin(2)}:1", "blocked", "VAN")
    assert all(f["owner"] == "production" for item in production for f in item["findings"])
    assert [f["code"] for f in production[1]["findings"]] == ["MASS_ABOVE_MAX"]  # not vin 4's approval

    type_approval = await store.worklist(Owner.TYPE_APPROVAL)
    assert [(item["vin"], item["state"]) for item in type_approval] == [
        (vin(3), "blocked"),
        (vin(4), "blocked"),
    ]
    assert [item["vin"] for item in await store.worklist(Owner.COMPLIANCE)] == [vin(5)]
    assert await store.worklist(Owner.INTEGRATION) == []


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
    return {doc["_id"]: doc async for doc in store.collection.find()}


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


async def test_secondary_indexes_exist_only_where_the_server_uses_them(store: StatusStore) -> None:
    indexes = (await store.index.index_information()).values()
    keys = {tuple(field for field, _ in index["key"]) for index in indexes}
    if await serves_secondary_indexes(store.collection.database.client):
        assert {("state",), ("owners",), ("group",)} <= keys
    else:  # FerretDB: they would only make each write dearer
        assert keys <= {("_id",)}
