"""The status read model's collections, the shape of each document in them, and reads of many by ``_id``.

Every collection is keyed by ``_id``, so that every hot read and write is by
``_id`` (see ``shared.mongo``):

- ``status_records``: one document per VIN, the typed record with its timeline
  (packed as its JSON beside ``seq``, see ``to_document``), written by the
  ``writer``;
- ``status_records_index``: per VIN its state, group and time as of its creation
  and its last archiving, what a recount reads for an archived record;
- ``status_records_unsettled``: per VIN not archived (on its way, waiting for a
  person, failed, rejected), what the worklists and state lists show, and what a
  recount reads for a record not archived;
- ``status_records_counts``: small counter documents moved by ``$inc``, which the
  readiness board reads (``counters``);
- ``status_records_journal`` and ``_heads``: which VINs' unsettled entries each
  writing process changed, in order, so the lists follow them (``journal``);
- ``status_records_runs`` and ``_lanes``: the archived list's runs and lanes
  (``archived``, ``services.status.archived``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection

from services.status.fold import StatusRecord
from services.status.worklist import open_keys
from shared.mongo import MongoDoc

COLLECTION = "status_records"
IDS_PER_READ = 1000  # ids in one $in: the stack's FerretDB answers up to 1,000 from its index


@dataclass(frozen=True)
class Collections:
    """The read model's eight collections, named after the records' collection."""

    records: AsyncCollection[MongoDoc]
    index: AsyncCollection[MongoDoc]
    unsettled: AsyncCollection[MongoDoc]
    counts: AsyncCollection[MongoDoc]
    journal: AsyncCollection[MongoDoc]
    heads: AsyncCollection[MongoDoc]
    runs: AsyncCollection[MongoDoc]
    lanes: AsyncCollection[MongoDoc]

    @classmethod
    def beside(cls, records: AsyncCollection[MongoDoc]) -> Collections:
        db, name = records.database, records.name
        return cls(
            records,
            *(
                db[f"{name}_{kind}"]
                for kind in ("index", "unsettled", "counts", "journal", "heads", "runs", "lanes")
            ),
        )

    def all(self) -> tuple[AsyncCollection[MongoDoc], ...]:
        return (
            self.records,
            self.index,
            self.unsettled,
            self.counts,
            self.journal,
            self.heads,
            self.runs,
            self.lanes,
        )


async def by_ids(collection: AsyncCollection[MongoDoc], ids: Sequence[str]) -> dict[str, MongoDoc]:
    """The documents of ``ids`` that exist, by ``_id``: ``$in`` of at most ``IDS_PER_READ`` per request."""
    found: dict[str, MongoDoc] = {}
    for start in range(0, len(ids), IDS_PER_READ):
        async for doc in collection.find({"_id": {"$in": list(ids[start : start + IDS_PER_READ])}}):
            found[doc["_id"]] = doc
    return found


def to_document(record: StatusRecord) -> MongoDoc:
    """The record as kept: ``_id`` the VIN, ``seq`` for the guard, the record itself as its JSON.

    Why packed: the record is only ever read whole by ``_id`` (what is queried
    lives in the index and unsettled entries), and FerretDB's cost per document
    grows with its fields, a timeline holding up to 20 entries of eight.
    Measured on FerretDB under the status fold, 500 records of five entries:
    read by ``$in`` 0.45 s as fields, 0.15 s packed; guarded replace 0.42 s
    and 0.17 s.
    """
    return {"_id": record.vin, "seq": record.seq, "json": record.model_dump_json().encode()}


def from_document(doc: MongoDoc) -> StatusRecord:
    """The record of a stored document, packed or kept as fields (as before 2026-12-01)."""
    packed = doc.get("json")
    if packed is not None:
        return StatusRecord.model_validate_json(packed)
    return StatusRecord.model_validate({key: value for key, value in doc.items() if key != "_id"})


def index_entry(record: StatusRecord) -> MongoDoc:
    """What a recount needs of an archived record (and, at its creation, the claim of its VIN)."""
    return {
        "_id": record.vin,
        "state": record.state.value,
        "group": record.vehicle_group,
        "owners": record.owners(),
        "updated_at": record.updated_at,
        "country": record.country,
        "record_type": record.record_type,
        "listed": True,  # written since the archived list's lanes: an archived record is entered in them
    }


def unsettled_entry(record: StatusRecord) -> MongoDoc:
    """What the lists need of a record not archived: ``keys`` are ``owner|code`` per finding."""
    return {
        "_id": record.vin,
        "record_id": record.record_id,
        "revision": record.revision,
        "state": record.state.value,
        "vehicle_group": record.vehicle_group,
        "country": record.country,
        "record_type": record.record_type,
        "updated_at": record.updated_at,
        "keys": open_keys(record),
        "findings": [finding.model_dump(mode="json") for finding in record.findings],
    }
