"""The status_records collection: one document per VIN, the read model behind readiness and worklists.

Several status instances may fold events of one VIN at once (during a consumer
group rebalance, or when a message is delivered again). FerretDB has no
transactions, so each write is guarded by the document's ``seq``: the insert of
a new VIN fails on the unique ``_id`` and the replace of a known one matches
nothing when another instance wrote first; either way the event is folded
again into what that instance wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.status.handlers import OPEN_STATES, Document, StatusServiceError, fold
from shared.contracts.events import State, StatusEvent
from shared.contracts.findings import Owner
from shared.mongo import MongoDoc

COLLECTION = "status_records"
MAX_ATTEMPTS = 20
NO_GROUP = "unknown"  # readiness key of records whose group no event has told (e.g. rejected input)


class WriteConflict(StatusServiceError):
    """Other writers kept winning; the message is delivered again and folded once more."""


class StatusStore:
    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        """Indexes for the readiness counts and the worklist queries."""
        for field in ("state", "owner", "findings.owner", "vehicle_group"):
            await self.collection.create_index(field)

    async def apply(self, event: StatusEvent) -> Document | None:
        """Fold ``event`` into its VIN's document; the document as stored, or None when unchanged."""
        for _ in range(MAX_ATTEMPTS):
            current = await self.collection.find_one({"_id": event.vin})
            new = fold(current, event)
            if new is None:
                return None
            if await self._write(current, new):
                return new
        raise WriteConflict(f"{event.record_id}: {MAX_ATTEMPTS} concurrent writes won before this one")

    async def apply_many(self, events: Sequence[StatusEvent]) -> int:
        """Fold a batch: one read for all its VINs, then one write per VIN that changed.

        Events of one VIN are folded in the order they came; a VIN whose write
        lost to another writer is folded again event by event (``apply``).
        Returns the number of documents written.
        """
        by_vin: dict[str, list[StatusEvent]] = defaultdict(list)
        for event in events:
            by_vin[event.vin].append(event)
        if not by_vin:
            return 0
        current = {doc["_id"]: doc async for doc in self.collection.find({"_id": {"$in": list(by_vin)}})}
        written = 0
        for vin, vin_events in by_vin.items():
            before = current.get(vin)
            after = before
            for event in vin_events:
                after = fold(after, event) or after
            if after is before:
                continue
            assert after is not None
            if await self._write(before, after):
                written += 1
                continue
            for event in vin_events:
                await self.apply(event)
            written += 1
        return written

    async def _write(self, current: Document | None, new: Document) -> bool:
        """Write ``new`` unless another writer changed the document since ``current`` was read."""
        if current is None:
            try:
                await self.collection.insert_one(new)
            except DuplicateKeyError:
                return False
            return True
        result = await self.collection.replace_one({"_id": new["_id"], "seq": current["seq"]}, new)
        return result.matched_count == 1

    async def get(self, vin: str) -> Document | None:
        return await self.collection.find_one({"_id": vin})

    async def readiness(self) -> dict[str, Any]:
        """Records per state and per vehicle group and state ($group with $sum only, as FerretDB allows)."""
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": {"state": "$state", "group": "$vehicle_group"}, "n": {"$sum": 1}}}
        ]
        by_state: dict[str, int] = {state.value: 0 for state in State}
        by_group: dict[str, dict[str, int]] = defaultdict(dict)
        async for row in await self.collection.aggregate(pipeline):
            state, group, count = row["_id"]["state"], row["_id"].get("group") or NO_GROUP, row["n"]
            by_state[state] = by_state.get(state, 0) + count
            by_group[group][state] = by_group[group].get(state, 0) + count
        return {"total": sum(by_state.values()), "by_state": by_state, "by_group": dict(by_group)}

    async def worklist(self, owner: Owner) -> list[Document]:
        """Records waiting for a person, with the findings ``owner`` must act on, by VIN."""
        cursor = self.collection.find(
            {"state": {"$in": sorted(s.value for s in OPEN_STATES)}, "findings.owner": owner.value},
            {"record_id": 1, "revision": 1, "state": 1, "vehicle_group": 1, "findings": 1, "updated_at": 1},
        ).sort("_id", 1)
        return [_work_item(doc, owner) async for doc in cursor]


def _work_item(doc: Document, owner: Owner) -> Document:
    return {
        "vin": doc["_id"],
        "record_id": doc["record_id"],
        "revision": doc["revision"],
        "state": doc["state"],
        "vehicle_group": doc.get("vehicle_group"),
        "updated_at": doc["updated_at"],
        "findings": [f for f in doc["findings"] if f["owner"] == owner.value],
    }
