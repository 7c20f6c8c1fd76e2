"""The re-issue jobs and their planned items in MongoDB (collections the workspace owns).

- ``workspace_reissue_jobs``: one document per job: what it re-issues, who
  started it, its cursor in the archive's list, how many items are planned
  and published, its state. Few documents: read whole.
- ``workspace_reissue_items``: one document per planned re-issue,
  ``_id`` = ``job:seq`` (seq from 0, in VIN order), holding the build record
  to publish. Read in batches by ``_id`` ``$in`` (see ``shared.mongo``); the
  unique (job, vin) index keeps a VIN at most once per job, whatever a
  resumed planning finds again.

No transactions (FerretDB): each step writes its items first and moves the
job's counters after, so a kill between the two repeats the step, whose
writes are refused as duplicates (planning) or whose records validation
takes as repeats (publishing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.workspace.reissue.plan import ACTIVE, Job, item_id
from shared.contracts import BuildRecord
from shared.mongo import MongoDoc, insert_new

JOBS, ITEMS = "workspace_reissue_jobs", "workspace_reissue_items"


class LeaseLost(Exception):
    """Another workspace took the job over (this one's lease ran out): this one stops working it."""


JOBS_LISTED = 50


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def job_of(doc: MongoDoc) -> Job:
    fields = {f.name for f in dataclasses.fields(Job)}
    values = {k: _utc(v) for k, v in doc.items() if k in fields}
    return Job(id=doc["_id"], **{k: v for k, v in values.items() if k != "id"})


def doc_of(job: Job) -> MongoDoc:
    doc = dataclasses.asdict(job)
    doc["_id"] = doc.pop("id")
    return doc


class JobStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.jobs: AsyncCollection[MongoDoc] = db[JOBS]
        self.items: AsyncCollection[MongoDoc] = db[ITEMS]

    async def setup(self) -> None:
        await self.items.create_index([("job", 1), ("vin", 1)], unique=True)

    async def create(self, job: Job) -> None:
        await self.jobs.insert_one(doc_of(job))

    async def get(self, job_id: str) -> Job | None:
        doc = await self.jobs.find_one({"_id": job_id})
        return None if doc is None else job_of(doc)

    async def save(self, job: Job) -> None:
        """Write the job, unless another worker took it over since (``LeaseLost``)."""
        result = await self.jobs.replace_one({"_id": job.id, "worker": job.worker}, doc_of(job))
        if result.matched_count != 1:
            raise LeaseLost(f"re-issue {job.id} is carried out by another workspace now")

    async def claim(self, job: Job, me: str, now: dt.datetime, lease_s: float) -> Job | None:
        """``job`` held by ``me`` for ``lease_s``, unless another worker's lease on it still runs (None)."""
        if job.worker not in (None, me) and job.lease_until is not None and job.lease_until > now:
            return None
        until = now + dt.timedelta(seconds=lease_s)
        result = await self.jobs.update_one(
            {"_id": job.id, "worker": job.worker}, {"$set": {"worker": me, "lease_until": until}}
        )
        if result.matched_count != 1:
            return None  # another worker claimed it first
        return dataclasses.replace(job, worker=me, lease_until=until)

    async def recent(self, limit: int = JOBS_LISTED) -> list[Job]:
        """The newest jobs first (the collection holds one small document per job ever started)."""
        found = [job_of(doc) async for doc in self.jobs.find({})]
        return sorted(found, key=lambda j: j.started_at, reverse=True)[:limit]

    async def active(self) -> list[Job]:
        return [job for job in await self.recent(limit=10_000) if job.state in ACTIVE]

    async def add_items(self, job: Job, first_seq: int, records: list[BuildRecord]) -> int:
        """Keep ``records`` as the job's items ``first_seq``…; how many were new (repeats refused)."""
        docs = [
            {
                "_id": item_id(job.id, first_seq + n),
                "job": job.id,
                "vin": r.vin,
                "record": r.model_dump(mode="json"),
            }
            for n, r in enumerate(records)
        ]
        return len(await insert_new(self.items, docs))

    async def batch(self, job: Job, start: int, end: int) -> list[BuildRecord]:
        """The records of items ``start``…``end``-1 in sequence order (gaps, VINs refused as repeats, left out)."""
        ids = [item_id(job.id, seq) for seq in range(start, end)]
        found = {doc["_id"]: doc async for doc in self.items.find({"_id": {"$in": ids}})}
        return [BuildRecord.model_validate(found[i]["record"]) for i in ids if i in found]
