"""Status events as the pipeline sends them, and what the stored read model says, for the status tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from services.status.adapters.documents import from_document
from services.status.adapters.store import StatusStore
from services.status.tally import Tally, add, tallies
from shared.contracts import Finding, Owner
from shared.contracts.events import State, StatusEvent
from tests.findings import APPROVAL, COLOUR, MASS

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


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


async def apply_all(store: StatusStore, events: list[StatusEvent]) -> None:
    for each in events:
        await store.records.apply(each)


async def documents(store: StatusStore) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: from_document(doc).model_dump() async for doc in store.kept.records.find()}


async def stored_tallies(store: StatusStore) -> Tally:
    """What the stored records contribute to the counters (``tally``), counted from the records themselves."""
    summed: Tally = {}
    async for doc in store.kept.records.find():
        add(summed, tallies(from_document(doc)))
    return summed


async def counters(store: StatusStore) -> Tally:
    return {key: n for key, n in (await store.counters.read()).items() if n}


async def unsettled_vins(store: StatusStore) -> set[str]:
    return {doc["_id"] async for doc in store.kept.unsettled.find({}, {"_id": 1})}


async def not_archived_vins(store: StatusStore) -> set[str]:
    return {
        doc["_id"]
        async for doc in store.kept.records.find()
        if from_document(doc).state is not State.ARCHIVED
    }
