"""Validation's pending store on the real FerretDB: the newest revision per VIN and what waits on an approval."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from devkit.samples import generate
from services.validation.adapters.pending import PendingStore
from services.validation.decide import Pending
from shared.contracts import ApprovalRef, BuildRecord
from shared.contracts.events import State
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

SAMPLE = generate(vehicles=1, seed=9, defect_share=0.0).builds[0]

BuildFactory = Callable[..., BuildRecord]


@pytest.fixture
async def pending(test_db: AsyncDatabase[MongoDoc]) -> PendingStore:
    """A pending store on a database of this test only, dropped afterwards."""
    made = PendingStore(test_db["validation_pending"])
    await made.setup()
    return made


@pytest.fixture
def build(unique: str) -> BuildFactory:
    """A sample build of VIN number ``n`` of this test, built to approval version ``version``."""

    def make(n: int, revision: int = 1, version: str = "A") -> BuildRecord:
        vin = f"WVW{unique.upper()}{n:02d}"
        approval = ApprovalRef(
            number=SAMPLE.approval.number,
            type=SAMPLE.approval.type,
            variant=SAMPLE.approval.variant,
            version=f"{version}-{unique}",
        )
        return SAMPLE.model_copy(
            update={"vin": vin, "build_id": f"B-{vin}-{revision}", "revision": revision, "approval": approval}
        )

    return make


async def test_saved_decision_is_read_back_with_its_build_state_and_reviewer(
    pending: PendingStore, build: BuildFactory
) -> None:
    record = build(1)
    assert await pending.save(record, State.NEEDS_REVIEW, waiting=True) is True
    assert await pending.get(record.vin) == Pending(record, State.NEEDS_REVIEW, None)

    assert await pending.save(record, State.VALIDATED, waiting=False, reviewed_by="a.reviewer") is True
    found = await pending.get(record.vin)
    assert found == Pending(record, State.VALIDATED, "a.reviewer")
    assert found is not None and not found.waiting


async def test_vin_never_saved_has_nothing_pending(pending: PendingStore, build: BuildFactory) -> None:
    await pending.save(build(1), State.BLOCKED, waiting=True)
    assert await pending.get(build(2).vin) is None


async def test_newer_revision_replaces_the_older_one(pending: PendingStore, build: BuildFactory) -> None:
    await pending.save(build(1, revision=1), State.BLOCKED, waiting=True)
    assert await pending.save(build(1, revision=2), State.VALIDATED, waiting=False) is True

    assert await pending.get(build(1).vin) == Pending(build(1, revision=2), State.VALIDATED)
    assert await pending.collection.count_documents({}) == 1


async def test_older_revision_saved_after_a_newer_one_is_refused_and_changes_nothing(
    pending: PendingStore, build: BuildFactory
) -> None:
    newer = build(1, revision=3)
    await pending.save(newer, State.HELD, waiting=True, reviewed_by=None)
    before = await pending.collection.find_one({"_id": newer.vin})

    assert await pending.save(build(1, revision=2), State.VALIDATED, waiting=False, reviewed_by="x") is False

    assert await pending.collection.find_one({"_id": newer.vin}) == before
    assert await pending.get(newer.vin) == Pending(newer, State.HELD, None)


async def test_waiting_on_lists_only_the_waiting_builds_of_that_approval(
    pending: PendingStore, build: BuildFactory
) -> None:
    blocked, held = build(1), build(2)
    await pending.save(blocked, State.BLOCKED, waiting=True)
    await pending.save(held, State.HELD, waiting=True)
    await pending.save(build(3), State.VALIDATED, waiting=False)  # released: waits on nothing
    await pending.save(build(4, version="B"), State.BLOCKED, waiting=True)  # another approval
    await pending.save(build(5, revision=1), State.BLOCKED, waiting=True)
    await pending.save(build(5, revision=2), State.VALIDATED, waiting=False)  # corrected since

    waiting = await pending.waiting_on(blocked.approval.key)

    assert sorted(waiting, key=lambda b: b.vin) == [blocked, held]
    assert await pending.waiting_on(build(4, version="B").approval.key) == [build(4, version="B")]
    assert await pending.waiting_on(build(1, version="C").approval.key) == []


async def test_waiting_in_lists_the_waiting_records_of_that_vehicle_group_with_their_state(
    pending: PendingStore, build: BuildFactory, unique: str
) -> None:
    group, other = f"HOLD-{unique}", f"AUTO-{unique}"

    def of(n: int, vehicle_group: str, revision: int = 1) -> BuildRecord:
        return build(n, revision).model_copy(update={"vehicle_group": vehicle_group})

    await pending.save(of(1, group), State.HELD, waiting=True)
    await pending.save(of(2, group), State.NEEDS_REVIEW, waiting=True)
    await pending.save(of(3, group), State.BLOCKED, waiting=True, reviewed_by="R. Reviewer")
    await pending.save(of(4, group), State.VALIDATED, waiting=False)  # released: waits for nothing
    await pending.save(of(5, other), State.HELD, waiting=True)  # another group
    await pending.save(of(6, group, revision=1), State.HELD, waiting=True)
    await pending.save(of(6, other, revision=2), State.VALIDATED, waiting=False)  # corrected since

    waiting = await pending.waiting_in(group)

    assert sorted(waiting, key=lambda p: p.build.vin) == [
        Pending(of(1, group), State.HELD),
        Pending(of(2, group), State.NEEDS_REVIEW),
        Pending(of(3, group), State.BLOCKED, "R. Reviewer"),
    ]
    assert await pending.waiting_in(other) == [Pending(of(5, other), State.HELD)]
    assert await pending.waiting_in(f"NONE-{unique}") == []


async def test_decisions_on_new_vins_are_saved_in_bulk_and_a_known_vin_is_left_to_save(
    pending: PendingStore, build: BuildFactory
) -> None:
    newer = build(1, revision=3)
    await pending.save(newer, State.HELD, waiting=True)
    before = await pending.collection.find_one({"_id": newer.vin})

    saved = await pending.save_new(
        [
            (build(1, revision=2), State.VALIDATED, False, None),
            (build(2), State.BLOCKED, True, None),
            (build(3), State.VALIDATED, False, None),
        ]
    )

    assert saved == {build(2).vin, build(3).vin}
    assert await pending.collection.find_one({"_id": newer.vin}) == before  # the newer revision stands
    assert await pending.get(build(2).vin) == Pending(build(2), State.BLOCKED)
    found = await pending.get(build(3).vin)
    assert found == Pending(build(3), State.VALIDATED) and not found.waiting
    waiting = {b.vin for b in await pending.waiting_on(build(2).approval.key)}
    assert waiting == {newer.vin, build(2).vin}  # held and blocked, not the validated one
    assert await pending.save_new([(build(2), State.BLOCKED, True, None)]) == set()  # the batch again
