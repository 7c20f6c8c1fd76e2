"""Where each VIN's revisions put it (vehicle group and plant), beside the validation_pending collection.

A revision that moves its vehicle to another group or plant is found when it
arrives, by comparing it with the VIN's newest revision in validation_pending;
the move is kept in ``validation_moves`` (one small document per moved record
id, rare), so every later decision on that revision (an approval arriving, a
policy change, the master data, a reviewer) still sees it.
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from services.validation.adapters.pending import pending_of
from services.validation.decide import Pending
from services.validation.revisions import Read
from services.validation.rules import Placement
from shared.contracts import BuildRecord
from shared.contracts.masterdata import MasterKind
from shared.mongo import MongoDoc, serves_secondary_indexes

MOVES = "validation_moves"
FIELD_OF = {MasterKind.VEHICLE_GROUP: "build.vehicle_group", MasterKind.PLANT: "build.plant"}


class PlacementStore:
    def __init__(self, pending: AsyncCollection[MongoDoc], moves: AsyncCollection[MongoDoc]) -> None:
        self.pending, self.moves = pending, moves

    async def setup(self) -> None:
        """The re-check of a plant's records reads by plant (FerretDB without indexes reads them all)."""
        if await serves_secondary_indexes(self.pending.database.client):
            await self.pending.create_index([("build.plant", 1), ("waiting", 1)])

    async def moved_from(self, build: BuildRecord, read: Read | None = None) -> Placement | None:
        """The previous revision's placement where ``build`` changes it; the first revision has none.

        Read by ``_id`` only: the VIN's pending document (unless ``read`` is it as
        the caller just read it), then the record id's move.
        """
        if build.revision == 1:
            return None
        newest: tuple[int, Placement] | None
        if read is None:
            stored = await self.pending.find_one({"_id": build.vin}, {"revision": 1, "build": 1})
            newest = None if stored is None else (int(stored["revision"]), placement_of(stored["build"]))
        else:
            kept = read.kept
            newest = None if kept is None else (kept.build.revision, Placement.of(kept.build))
        if newest is not None and newest[0] < build.revision:
            revision, before = newest
            if before == Placement.of(build):
                return None
            move = {
                "vehicle_group": before.vehicle_group,
                "plant": before.plant,
                "from_revision": revision,
            }
            await self.moves.replace_one({"_id": build.record_id}, move, upsert=True)
            return before
        moved = await self.moves.find_one({"_id": build.record_id})
        return None if moved is None else placement_of(moved)

    async def waiting_named(self, kind: MasterKind, name: str) -> list[Pending]:
        """The waiting records of one plant or group: a rare action's read (a lead adding a name)."""
        cursor = self.pending.find({FIELD_OF[kind]: name, "waiting": True})
        return [pending_of(doc) async for doc in cursor]


def placement_of(build: MongoDoc) -> Placement:
    """The group and plant of a build as the pending document keeps it."""
    return Placement(build["vehicle_group"], build["plant"])
