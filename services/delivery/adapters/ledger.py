"""The delivery ledger in MongoDB: every delivery, the ones still to do, and each VIN's deliveries.

- ``delivery_ledger``: one document per delivery (``VIN:IviVersionNumber:destination``),
  its step, attempts, reason and owner, and every receipt (the authority's raw
  reply included). Kept, never removed: the evidence of what was delivered.
- ``delivery_pending``: the deliveries not yet final, with when each is due and
  the signed document to send. Small (what is in flight), so the sender reads
  it whole; an entry is removed once its delivery is final.
- ``delivery_vins``: per VIN, its record ids and their delivery ids, so a VIN's
  deliveries are read by ``_id`` (see ``shared.mongo``) and a repeated archive
  receipt is recognised.

A send is claimed first, for ``delivery_lease_s``: another instance takes it only
when that lease ran out, that is when its sender died with the send in doubt.
Claims are numbered slots in ``delivery_claims`` (``<delivery id>#<n>``, with the
time its lease ends), taken by inserting them: the unique ``_id`` lets exactly one
sender have a slot, on FerretDB too, where a conditional update is a read and a
write, not one step (see ``shared.mongo``: two instances claiming by a
compare-and-set on ``claim`` both won 26 of 60 deliveries, measured). The ledger
entry says the last slot taken (``claims``); a sender that finds that slot still
leased leaves the delivery alone, so one that read the entry while another held
it never sends it again (with the compare-and-set, 451 of 900 deliveries of an
end-to-end run with two instances were claimed a second time). The holder frees
its slot when it saves the answer; a slot whose holder died before writing the
ledger is passed over once its lease ran out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import asdict, replace
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.delivery.deliver import Delivery, Step
from shared.contracts import Owner
from shared.mongo import MongoDoc

LEDGER, PENDING, VINS, CLAIMS = "delivery_ledger", "delivery_pending", "delivery_vins", "delivery_claims"
SLOTS_TRIED = 3  # claim slots tried past those whose holder died between taking one and writing the ledger


def slot(delivery_id: str, number: int) -> str:
    return f"{delivery_id}#{number}"


def as_utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def to_doc(delivery: Delivery) -> MongoDoc:
    doc = asdict(delivery)
    doc["_id"] = doc.pop("id")
    doc["step"] = delivery.step.value
    doc["owner"] = delivery.owner.value if delivery.owner else None
    doc["receipts"] = list(delivery.receipts)
    return doc


def from_doc(doc: MongoDoc) -> Delivery:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    receipts = tuple(
        {**r, "at": as_utc(r.get("at"))} if isinstance(r, dict) else r for r in fields.pop("receipts", ())
    )
    return Delivery(
        id=doc["_id"],
        **{
            **fields,
            "step": Step(fields["step"]),
            "owner": Owner(fields["owner"]) if fields.get("owner") else None,
            "next_at": as_utc(fields.get("next_at")),
            "receipts": receipts,
        },
    )


class Ledger:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.ledger: AsyncCollection[MongoDoc] = db[LEDGER]
        self.pending: AsyncCollection[MongoDoc] = db[PENDING]
        self.vins: AsyncCollection[MongoDoc] = db[VINS]
        self.claims: AsyncCollection[MongoDoc] = db[CLAIMS]

    async def known(self, vin: str, record_id: str) -> bool:
        """Whether the archive receipt of ``record_id`` was taken in already."""
        doc = await self.vins.find_one({"_id": vin})
        return bool(doc and record_id in (doc.get("records") or {}))

    async def record(self, delivery: Delivery) -> Delivery:
        """Write a new delivery's ledger entry; a repeat gets the entry already there, unchanged."""
        try:
            await self.ledger.insert_one(to_doc(delivery))
        except DuplicateKeyError:
            found = await self.get(delivery.id)
            assert found is not None
            return found
        return delivery

    async def schedule(self, delivery: Delivery, signed_xml: bytes | None) -> None:
        """Hand a recorded delivery to the sender (its pending entry), then note the receipt taken in.

        The ledger entry comes first (``record``), so the sender never finds a
        pending entry without one; a crash between the steps is repaired by the
        receipt delivered again (the VIN's list, written last, says it was taken in).
        """
        if not delivery.final and signed_xml is not None:
            with contextlib.suppress(DuplicateKeyError):
                await self.pending.insert_one(
                    {"_id": delivery.id, "next_at": delivery.next_at, "xml": signed_xml.decode("utf-8")}
                )
        await self.vins.update_one(
            {"_id": delivery.vin}, {"$set": {f"records.{delivery.record_id}": delivery.id}}, upsert=True
        )

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self.ledger.find_one({"_id": delivery_id})
        return None if doc is None else from_doc(doc)

    async def of_vin(self, vin: str) -> list[Delivery]:
        doc = await self.vins.find_one({"_id": vin})
        ids = sorted(set((doc or {}).get("records", {}).values()))
        found = [await self.get(i) for i in ids]
        return [d for d in found if d is not None]

    async def due(self, now: dt.datetime, limit: int) -> list[str]:
        """Pending deliveries whose time has come, the longest waiting first."""
        due: list[tuple[dt.datetime, str]] = []
        async for doc in self.pending.find({}, {"next_at": 1}):
            at = as_utc(doc.get("next_at")) or now
            if at <= now:
                due.append((at, doc["_id"]))
        return [i for _at, i in sorted(due)[:limit]]

    async def document(self, delivery_id: str) -> bytes | None:
        doc = await self.pending.find_one({"_id": delivery_id}, {"xml": 1})
        return doc["xml"].encode("utf-8") if doc and doc.get("xml") else None

    async def claim(self, delivery: Delivery, now: dt.datetime, lease_s: float) -> Delivery | None:
        """Mark a send in flight, unless another sender holds it (then None): see the module's docstring."""
        if delivery.claims:
            held = await self.claims.find_one({"_id": slot(delivery.id, delivery.claims)})
            if held is not None and (as_utc(held.get("until")) or now) > now:
                return None  # its holder's lease runs: it is sending, or deciding
        token, until = uuid.uuid4().hex, now + dt.timedelta(seconds=lease_s)
        number = await self._take_slot(delivery, now, until, token)
        if number is None:
            return None
        step = Step.SENDING if delivery.step is not Step.SUBMITTED else Step.SUBMITTED
        attempts = delivery.attempts + (0 if step is Step.SUBMITTED else 1)
        result = await self.ledger.update_one(
            {"_id": delivery.id, "$or": [{"claims": {"$lt": number}}, {"claims": None}]},
            {"$set": {"claim": token, "claims": number, "step": step.value, "attempts": attempts}},
        )
        if result.matched_count != 1:
            return None
        await self.postpone(delivery.id, now, lease_s)
        return replace(delivery, claim=token, claims=number, step=step, attempts=attempts)

    async def _take_slot(
        self, delivery: Delivery, now: dt.datetime, until: dt.datetime, token: str
    ) -> int | None:
        """Insert the next claim slot; past a slot whose holder died before its ledger write, the one after."""
        number = delivery.claims + 1
        for _ in range(SLOTS_TRIED):
            try:
                await self.claims.insert_one(
                    {"_id": slot(delivery.id, number), "until": until, "token": token}
                )
            except DuplicateKeyError:
                taken = await self.claims.find_one({"_id": slot(delivery.id, number)})
                if taken is None or (as_utc(taken.get("until")) or now) > now:
                    return None  # another sender has it (or had it and freed it: the entry moved on)
                number += 1
                continue
            return number
        return None

    async def save(self, delivery: Delivery) -> bool:
        """Write a delivery's new step and reschedule its pending entry; False when its claim was taken over.

        Guarded by the claim's number: a sender that outlived its lease, whose
        delivery another sender claimed meanwhile, leaves the entry to that one
        (its older answer must not undo the newer claim). A final delivery keeps
        its pending entry until the sender has announced it (``forget_pending``),
        so a crash in between announces it again.
        """
        result = await self.ledger.replace_one(
            {"_id": delivery.id, "claims": delivery.claims}, to_doc(delivery)
        )
        if result.matched_count != 1:
            return False
        await self.claims.delete_one({"_id": slot(delivery.id, delivery.claims)})  # the slot is free again
        if not delivery.final:
            await self.pending.update_one({"_id": delivery.id}, {"$set": {"next_at": delivery.next_at}})
        return True

    async def postpone(self, delivery_id: str, now: dt.datetime, wait_s: float) -> None:
        await self.pending.update_one(
            {"_id": delivery_id}, {"$set": {"next_at": now + dt.timedelta(seconds=wait_s)}}
        )

    async def forget_pending(self, delivery_id: str) -> None:
        await self.pending.delete_one({"_id": delivery_id})
