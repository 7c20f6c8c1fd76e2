"""The re-issue jobs on the real FerretDB: items once per VIN, batches in order, one worker at a time."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.workspace.reissue.plan import Job
from services.workspace.reissue.store import JobStore, LeaseLost
from shared.contracts import ApprovalRef, BuildRecord
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 12, 7, 9, 30, 15, 123000, tzinfo=dt.UTC)


@pytest.fixture
async def jobs(test_db: AsyncDatabase[MongoDoc]) -> JobStore:
    made = JobStore(test_db)
    await made.setup()
    return made


def record(vin: str) -> BuildRecord:
    return BuildRecord(
        vin=vin,
        build_id=f"B-{vin}",
        revision=2,
        plant="Durban",
        vehicle_group="Polo",
        approval=ApprovalRef(number="e1*2018/858*00001*00", type="T", variant="V", version="W"),
        released_at=AT,
    )


def a_job() -> Job:
    return Job("reissue-20261207093015-abc123", "K", "b" * 64, "Thandi Nkosi", "Pieter Botha", AT, expected=3)


async def test_items_are_kept_once_per_vin_and_read_back_in_sequence(jobs: JobStore) -> None:
    job = a_job()
    await jobs.create(job)
    assert await jobs.add_items(job, 0, [record("V1"), record("V2")]) == 2
    assert await jobs.add_items(job, 0, [record("V1"), record("V2")]) == 0  # the same page planned again
    assert await jobs.add_items(job, 2, [record("V1"), record("V3")]) == 1  # V1 is planned already
    assert [r.vin for r in await jobs.batch(job, 0, 4)] == ["V1", "V2", "V3"]
    assert await jobs.get(job.id) == job


async def test_one_worker_holds_a_job_until_its_lease_runs_out_then_another_takes_it_over(
    jobs: JobStore,
) -> None:
    await jobs.create(a_job())
    first = await jobs.claim(a_job(), "first", AT, 20)
    assert first is not None and first.worker == "first"
    assert await jobs.claim(first, "second", AT + dt.timedelta(seconds=5), 20) is None
    await jobs.save(dataclasses.replace(first, planned=1))

    stored = await jobs.get(first.id)
    assert stored is not None and stored.planned == 1
    second = await jobs.claim(stored, "second", AT + dt.timedelta(seconds=21), 20)
    assert second is not None and second.worker == "second"
    with pytest.raises(LeaseLost):
        await jobs.save(dataclasses.replace(first, planned=2))
    stored = await jobs.get(first.id)
    assert stored is not None and (stored.worker, stored.planned) == ("second", 1)
