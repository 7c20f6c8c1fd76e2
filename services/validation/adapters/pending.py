"""The validation_pending collection: one document per VIN, the newest revision seen and its state.

Records that wait (blocked, needs_review, held) are checked again when an
approval arrives, a reviewer decides or their vehicle group's release policy
changes; the newest revision also tells which older deliveries to ignore.
Beside it, ``fingerprints`` keeps the content fingerprint of each revision
received (``services.validation.revisions``; of the newest 100), keyed by the
revision as text: a record id sent again with other content is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pymongo.asynchronous.collection import AsyncCollection

from services.validation.adapters.clock import SystemClock
from services.validation.decide import Pending
from services.validation.ports import Clock, NewDecision
from services.validation.revisions import Kept, Read, kept_fingerprints
from shared.contracts import Approval, BuildRecord
from shared.contracts.approvals import master_data_sha256
from shared.contracts.events import Settlement, State
from shared.mongo import MongoDoc, insert_new, serves_secondary_indexes

COLLECTION = "validation_pending"


class PendingStore:
    def __init__(self, collection: AsyncCollection[MongoDoc], clock: Clock | None = None) -> None:
        self.collection = collection
        self.clock = clock or SystemClock()  # stamps each document's updated_at

    async def setup(self) -> None:
        """The indexes of the re-check queries, where the server uses them."""
        if not await serves_secondary_indexes(self.collection.database.client):
            return
        await self.collection.create_index([("approval_key", 1), ("waiting", 1)])
        await self.collection.create_index([("build.vehicle_group", 1), ("waiting", 1)])

    async def save(
        self,
        build: BuildRecord,
        state: State,
        waiting: bool,
        reviewed_by: str | None = None,
        approval: Approval | None = None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> bool:
        """Remember a decision unless a newer revision of the VIN is already known.

        Returns False for a superseded revision (nothing written). Read, compare,
        write by ``_id`` (see ``shared.mongo``); a VIN's records come from one
        partition, one at a time. The fingerprints read are written back, with
        ``fingerprint`` for the build's revision when given. ``read``: the
        VIN's document as the caller just read it (``kept``), which saves the read.
        """
        if read is None:
            stored = await self.collection.find_one({"_id": build.vin}, {"revision": 1, "fingerprints": 1})
            newest = None if stored is None else int(stored["revision"])
            known = {} if stored is None else fingerprints_of(stored)
        else:
            newest = None if read.kept is None else read.kept.build.revision
            known = {} if read.kept is None else dict(read.kept.fingerprints)
        if newest is not None and newest > build.revision:
            return False
        doc = pending_doc(build, state, waiting, self.clock.now(), reviewed_by, approval, settlement)
        doc["fingerprints"] = fingerprints_doc(kept_fingerprints(known, build.revision, fingerprint))
        await self.collection.replace_one({"_id": build.vin}, doc, upsert=True)
        return True

    async def save_new(
        self, decisions: list[NewDecision], fingerprints: Mapping[str, str] | None = None
    ) -> set[str]:
        """Remember the decisions on VINs seen for the first time, in one request; the VINs saved.

        A VIN already known is refused as a duplicate and left out: its
        decision is saved by ``save``, which compares revisions.
        """
        at = self.clock.now()
        docs = [
            pending_doc(build, state, waiting, at, None, approval)
            for build, state, waiting, approval in decisions
        ]
        for doc, (build, *_rest) in zip(docs, decisions, strict=True):
            content = (fingerprints or {}).get(build.record_id)
            doc["fingerprints"] = {str(build.revision): content} if content else {}
        return {str(vin) for vin in await insert_new(self.collection, docs)}

    async def document(self, vin: str) -> MongoDoc | None:
        """What validation keeps of a VIN, for its read API: the build as received and the decision."""
        return await self.collection.find_one({"_id": vin})

    async def get(self, vin: str) -> Pending | None:
        doc = await self.collection.find_one({"_id": vin})
        return None if doc is None else pending_of(doc)

    async def kept(self, vin: str) -> Kept | None:
        doc = await self.collection.find_one({"_id": vin}, {"build": 1, "fingerprints": 1})
        if doc is None:
            return None
        return Kept(BuildRecord.model_validate(doc["build"]), fingerprints_of(doc))

    async def waiting_on(self, approval_key: str) -> list[BuildRecord]:
        return [
            waiting.build for waiting in (await self.waiting_on_any([approval_key])).get(approval_key, [])
        ]

    async def waiting_on_any(self, approval_keys: Sequence[str]) -> dict[str, list[Pending]]:
        """The waiting records of several approvals, by key: one read for all.

        Not a read by ``_id``: FerretDB reads the whole collection for it (see
        shared.mongo), so approvals published together (an upload of 500) cost
        one such read, not one each.
        """
        if not approval_keys:
            return {}
        cursor = self.collection.find({"approval_key": {"$in": list(approval_keys)}, "waiting": True})
        found: dict[str, list[Pending]] = {}
        async for doc in cursor:
            found.setdefault(doc["approval_key"], []).append(pending_of(doc))
        return found

    async def waiting_in(self, vehicle_group: str) -> list[Pending]:
        """The records of a vehicle group that wait, with their state: what a policy change decides again.

        Not a read by ``_id``, so on FerretDB it reads the whole collection
        (see shared.mongo): acceptable for this rare action (a compliance lead
        changing a group's policy, and once per group after a start), never
        on the path of a record.
        """
        cursor = self.collection.find({"build.vehicle_group": vehicle_group, "waiting": True})
        return [pending_of(doc) async for doc in cursor]

    async def waiting(self) -> list[Pending]:
        """Every waiting record with its state: what a hand-over of partitions filters (``Validation.take_over``).

        One read for every partition handed over, filtered by the caller: on
        FerretDB any query but by ``_id`` reads the whole collection (see
        shared.mongo), so one per partition would cost that many.
        """
        return [pending_of(doc) async for doc in self.collection.find({"waiting": True})]


def fingerprints_of(doc: MongoDoc) -> dict[int, str]:
    """The content fingerprints a VIN's document keeps, by revision (none in a document kept before them)."""
    return {int(revision): str(value) for revision, value in (doc.get("fingerprints") or {}).items()}


def fingerprints_doc(fingerprints: Mapping[int, str]) -> dict[str, str]:
    """Fingerprints by revision as a document keeps them (its keys are text)."""
    return {str(revision): value for revision, value in fingerprints.items()}


def pending_of(doc: MongoDoc) -> Pending:
    settlement = doc.get("settlement")
    return Pending(
        BuildRecord.model_validate(doc["build"]),
        State(doc["state"]),
        doc.get("reviewed_by"),
        Settlement.model_validate(settlement) if settlement else None,
    )


def pending_doc(
    build: BuildRecord,
    state: State,
    waiting: bool,
    updated_at: dt.datetime,
    reviewed_by: str | None = None,
    approval: Approval | None = None,
    settlement: Settlement | None = None,
) -> MongoDoc:
    """What validation keeps of a VIN: its newest revision, the build and the decision on it."""
    return {
        "_id": build.vin,
        "revision": build.revision,
        "state": state.value,
        "waiting": waiting,
        "approval_key": build.approval.key,
        "build": build.model_dump(mode="json"),
        "reviewed_by": reviewed_by,
        "settlement": settlement.model_dump(mode="json") if settlement else None,
        # The approval data the decision was taken against, named by its hash (release evidence).
        "approval_sha256": master_data_sha256(approval) if approval else None,
        "updated_at": updated_at,
    }
