"""Where revisions put a VIN, on the real FerretDB and Kafka: moves kept per record id, names read from their topic.

The master-data topic is the real ``coc.masterdata.v1``, which other tests and
the workspace also write to, so this test uses names carrying its own suffix.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cli.groups import publish, read_table
from devkit.samples import generate
from services.validation.adapters.masterdata import read_all
from services.validation.adapters.pending import PendingStore
from services.validation.adapters.placements import MOVES, PlacementStore
from services.validation.revisions import Kept, Read
from services.validation.rules import Placement
from shared import topics
from shared.contracts.events import State, now
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.kafka import partitions_of
from shared.mongo import MongoDoc
from shared.settings import CocSettings

pytestmark = pytest.mark.integration

SAMPLE = generate(vehicles=1, seed=9, defect_share=0.0).builds[0]


async def test_a_revision_moved_to_another_group_is_found_once_and_kept_for_its_record_id(
    test_db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    pending = PendingStore(test_db["validation_pending"])
    placements = PlacementStore(test_db["validation_pending"], test_db[MOVES])
    await placements.setup()
    first = SAMPLE.model_copy(update={"vin": f"WVW{unique.upper()}01", "vehicle_group": "KUDU"})
    moved = first.model_copy(update={"revision": 2, "vehicle_group": "RHINO"})
    assert await placements.moved_from(first) is None  # a first revision moves nothing
    await pending.save(first, State.VALIDATED, False)

    assert await placements.moved_from(moved) == Placement("KUDU", first.plant)
    await pending.save(moved, State.NEEDS_REVIEW, True)
    # Decided again later (the pending document now holds revision 2): the move is still known.
    assert await placements.moved_from(moved) == Placement("KUDU", first.plant)
    waiting = await placements.waiting_named(MasterKind.VEHICLE_GROUP, "RHINO")
    assert [(p.build.vin, p.state) for p in waiting] == [(moved.vin, State.NEEDS_REVIEW)]
    assert [p.build.vin for p in await placements.waiting_named(MasterKind.PLANT, first.plant)] == [moved.vin]
    third = moved.model_copy(update={"revision": 3, "build_id": "corrected again"})
    assert await placements.moved_from(third) is None  # same group and plant as revision 2


async def test_a_later_revision_compared_placed_and_saved_after_one_read_of_its_vins_document(
    test_db: AsyncDatabase[MongoDoc], unique: str
) -> None:
    pending = PendingStore(test_db["validation_pending"])
    placements = PlacementStore(test_db["validation_pending"], test_db[MOVES])
    first = SAMPLE.model_copy(update={"vin": f"WVW{unique.upper()}02", "vehicle_group": "KUDU"})
    moved = first.model_copy(update={"revision": 2, "vehicle_group": "RHINO"})
    await pending.save(first, State.VALIDATED, False, fingerprint="one")
    read = Read(await pending.kept(first.vin))

    assert await placements.moved_from(moved, read) == Placement("KUDU", first.plant)
    assert await pending.save(moved, State.NEEDS_REVIEW, True, fingerprint="two", read=read)
    kept = await pending.kept(first.vin)
    assert kept is not None and kept.build == moved and kept.fingerprints == {1: "one", 2: "two"}
    # What was read says a newer revision is known: an older one is not saved over it.
    assert not await pending.save(first, State.VALIDATED, False, read=Read(kept))
    # A VIN read as unknown: saved, and a later revision's move is looked for by its record id.
    other = first.model_copy(update={"vin": f"WVW{unique.upper()}03", "revision": 4})
    assert await placements.moved_from(other, Read(None)) is None
    assert await pending.save(other, State.VALIDATED, False, read=Read(None))
    assert (await pending.kept(other.vin)) == Kept(other, {})


async def test_names_published_as_coc_groups_does_are_read_back_and_the_newest_wins(
    settings: CocSettings, unique: str
) -> None:
    group, plant = f"G-{unique}", f"Plant {unique}"
    at = now()
    added = MasterDataChange(kind=MasterKind.VEHICLE_GROUP, name=group, set_by="C. Lead", set_at=at)
    factory = MasterDataChange(kind=MasterKind.PLANT, name=plant, set_by="C. Lead", set_at=at)
    withdrawn = added.model_copy(update={"known": False, "set_at": at + dt.timedelta(seconds=1)})
    for change in (added, factory, withdrawn):
        await publish(settings, change)

    assert await partitions_of(settings, topics.MASTERDATA) == [0]
    mine = [c for c in await read_all(settings) if unique in c.name]
    assert mine in ([added, factory, withdrawn], [factory, withdrawn])  # compaction may drop the first
    table = await read_table(settings)  # what `coc groups list` prints
    assert table.is_known(MasterKind.PLANT, plant) and not table.is_known(MasterKind.VEHICLE_GROUP, group)
