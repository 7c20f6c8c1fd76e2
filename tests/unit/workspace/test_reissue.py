"""Re-issue after an approval correction: the planned record, paged planning, batched publishing, resume after a kill."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import pytest
from pydantic import BaseModel

from services.workspace.reissue import worker as worker_module
from services.workspace.reissue.plan import Job, ReissueError, item_id, next_revision, reissue_record
from services.workspace.reissue.store import LeaseLost
from services.workspace.reissue.worker import LEASE_S, Worker
from shared import topics
from shared.contracts import ApprovalRef, BuildRecord

pytestmark = pytest.mark.unit

KEY = "e6*2018/858*00294*01|AX2T(M)|ZYX20(H)|AX2T0L"
OLD, NEW = "a" * 64, "b" * 64
AT = dt.datetime(2026, 12, 7, 9, 30, 15, 123000, tzinfo=dt.UTC)


def archived_build(vin: str, revision: int = 1) -> dict[str, Any]:
    return BuildRecord(
        vin=vin,
        build_id=f"MES-{vin[-4:]}",
        revision=revision,
        manufactured_on=dt.date(2026, 12, 1),
        plant="Durban",
        vehicle_group="C-HR",
        approval=ApprovalRef(
            number="e6*2018/858*00294*01", type="AX2T(M)", variant="ZYX20(H)", version="AX2T0L"
        ),
        released_at=dt.datetime(2026, 12, 2, 8, tzinfo=dt.UTC),
        signature_date=dt.date(2026, 12, 2),
    ).model_dump(mode="json")


def job(**changes: Any) -> Job:
    base = Job(
        id="reissue-20261207093015-abc123",
        approval_key=KEY,
        approval_sha256=NEW,
        changed_by="Thandi Nkosi",
        started_by="Pieter Botha",
        started_at=AT,
        expected=0,
    )
    return dataclasses.replace(base, **changes)


def test_a_re_issue_is_the_archived_build_as_the_next_revision_at_the_jobs_time_naming_what_it_corrects() -> (
    None
):
    item = {"vin": "JTAM1C0MPTEST0042", "revision": 1, "version_number": 1, "approval_sha256": OLD}
    record = reissue_record(job(), item, archived_build("JTAM1C0MPTEST0042"), revision=3)

    assert (record.vin, record.revision, record.record_id) == ("JTAM1C0MPTEST0042", 3, "JTAM1C0MPTEST0042:3")
    assert record.released_at == AT  # IviVersionDateTime: the re-issue's time, not the original's
    assert record.signature_date is None  # the SignatureDate follows the new time
    assert record.build_id == "MES-0042" and record.manufactured_on == dt.date(2026, 12, 1)
    correction = record.correction
    assert correction is not None
    assert (correction.of_revision, correction.of_version_number) == (1, 1)
    assert (correction.approval_key, correction.approval_sha256) == (KEY, NEW)
    assert (correction.changed_by, correction.started_by, correction.job) == (
        "Thandi Nkosi",
        "Pieter Botha",
        "reissue-20261207093015-abc123",
    )


def test_the_same_job_plans_the_same_content_again() -> None:
    item = {"vin": "JTAM1C0MPTEST0042", "revision": 2, "version_number": 2}
    first = reissue_record(job(), item, archived_build("JTAM1C0MPTEST0042", 2), revision=3)
    again = reissue_record(job(), item, archived_build("JTAM1C0MPTEST0042", 2), revision=3)
    assert first.model_dump_json() == again.model_dump_json()


def test_a_certificate_archived_without_its_build_cannot_be_re_issued() -> None:
    with pytest.raises(ReissueError, match="no build record"):
        reissue_record(job(), {"vin": "V1", "revision": 1}, None, revision=2)


@pytest.mark.parametrize(("archived", "status", "expected"), [(1, None, 2), (1, 1, 2), (2, 4, 5), (3, 2, 4)])
def test_the_next_revision_comes_after_every_revision_status_or_the_archive_knows(
    archived: int, status: int | None, expected: int
) -> None:
    assert next_revision(archived, status) == expected


# -- the worker, with fakes -------------------------------------------------------------------


class FakeJobs:
    """The job store in memory, with the same refusals (an item's _id, a VIN once per job)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.items: dict[str, dict[str, Any]] = {}

    async def create(self, made: Job) -> None:
        self.jobs[made.id] = made

    async def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def save(self, saved: Job) -> None:
        if self.jobs[saved.id].worker != saved.worker:
            raise LeaseLost(f"{saved.id} taken over")
        self.jobs[saved.id] = saved

    async def claim(self, held: Job, me: str, now: dt.datetime, lease_s: float) -> Job | None:
        if held.worker not in (None, me) and held.lease_until is not None and held.lease_until > now:
            return None
        if self.jobs[held.id].worker != held.worker:
            return None
        claimed = dataclasses.replace(held, worker=me, lease_until=now + dt.timedelta(seconds=lease_s))
        self.jobs[held.id] = claimed
        return claimed

    async def active(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    async def add_items(self, of: Job, first_seq: int, records: list[BuildRecord]) -> int:
        new = 0
        for n, record in enumerate(records):
            key = item_id(of.id, first_seq + n)
            taken = any(i["job"] == of.id and i["vin"] == record.vin for i in self.items.values())
            if key in self.items or taken:
                continue
            self.items[key] = {"job": of.id, "vin": record.vin, "record": record}
            new += 1
        return new

    async def batch(self, of: Job, start: int, end: int) -> list[BuildRecord]:
        ids = [item_id(of.id, seq) for seq in range(start, end)]
        return [self.items[i]["record"] for i in ids if i in self.items]


class FakeArchive:
    def __init__(self, vins: list[str]) -> None:
        self.vins = sorted(vins)
        self.pages = 0

    async def affected(
        self, approval_key: str, *, other_than: str | None, limit: int, after: str | None, with_build: bool
    ) -> dict[str, Any]:
        assert approval_key == KEY and other_than == NEW and with_build
        self.pages += 1
        rest = [v for v in self.vins if after is None or v > after]
        page = rest[:limit]
        items = [
            {"vin": v, "revision": 1, "version_number": 1, "approval_sha256": OLD, "build": archived_build(v)}
            for v in page
        ]
        more = len(rest) > limit
        return {"total": len(rest), "items": items, "next": page[-1] if more else None}


class FakeStatus:
    def __init__(self, revisions: dict[str, int]) -> None:
        self.revisions = revisions

    async def record(self, vin: str) -> dict[str, Any] | None:
        revision = self.revisions.get(vin)
        return None if revision is None else {"vin": vin, "revision": revision}


class Killed(Exception):
    """The workspace killed in the middle of a batch."""


class FakeSender:
    def __init__(self, die_after: int | None = None) -> None:
        self.sent: list[tuple[str, BuildRecord]] = []
        self.die_after = die_after

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        if self.die_after is not None and len(self.sent) >= self.die_after:
            raise Killed
        assert isinstance(model, BuildRecord) and key == model.vin and correlation_id == model.record_id
        self.sent.append((topic, model))


VINS = [f"JTAM1C0MPTE{n:06d}" for n in range(23)]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "PLAN_PAGE", 5)
    monkeypatch.setattr(worker_module, "PUBLISH_BATCH", 4)


async def test_a_job_plans_page_by_page_then_publishes_every_vin_once_as_its_next_revision() -> None:
    jobs, archive = FakeJobs(), FakeArchive(VINS)
    sender = FakeSender()
    await jobs.create(job(expected=len(VINS)))
    worker = Worker(jobs, archive, FakeStatus({VINS[0]: 4}), sender, clock=lambda: AT)  # type: ignore[arg-type]

    done = await worker.finish(job(expected=len(VINS)))

    assert archive.pages == 5  # 23 certificates in pages of 5
    assert (done.state, done.planned, done.published, done.skipped) == ("done", 23, 23, 0)
    assert done.finished_at == AT
    assert [r.vin for _t, r in sender.sent] == VINS
    assert {t for t, _r in sender.sent} == {topics.BUILDS}
    revisions = {r.vin: r.revision for _t, r in sender.sent}
    assert (
        revisions[VINS[0]] == 5 and revisions[VINS[1]] == 2
    )  # after status's current revision, or the archived one
    assert jobs.jobs[done.id] == done


async def test_a_job_killed_in_the_middle_of_publishing_finishes_when_started_again_with_no_vin_missed_or_changed() -> (
    None
):
    jobs, archive = FakeJobs(), FakeArchive(VINS)
    await jobs.create(job(expected=len(VINS)))
    dying = FakeSender(die_after=10)  # dies inside the third batch of four
    with pytest.raises(Killed):
        await Worker(jobs, archive, FakeStatus({}), dying).finish(job())  # type: ignore[arg-type]
    kept = jobs.jobs[job().id]
    assert (kept.state, kept.planned, kept.published) == ("publishing", 23, 8)

    restarted = FakeSender()
    [active] = await jobs.active()
    done = await Worker(jobs, archive, FakeStatus({}), restarted).finish(active)  # type: ignore[arg-type]

    assert done.state == "done" and done.published == 23
    first = {r.vin: r for _t, r in dying.sent}
    again = {r.vin: r for _t, r in restarted.sent}
    assert set(first) | set(again) == set(VINS)  # none missed
    for vin in set(first) & set(again):  # sent twice only within the batch the kill cut: the same record
        assert first[vin] == again[vin]
    assert len(set(first) & set(again)) == 2
    assert archive.pages == 5  # planning was not repeated


async def test_planning_cut_after_a_page_was_kept_plans_that_page_again_without_a_second_item_per_vin() -> (
    None
):
    jobs, archive = FakeJobs(), FakeArchive(VINS)
    start = job(expected=len(VINS))
    await jobs.create(start)
    worker = Worker(jobs, archive, FakeStatus({}), FakeSender())  # type: ignore[arg-type]
    planned = await worker.step(start)
    await jobs.save(start)  # as if killed after the items were written, before the job moved on
    again = await worker.step(start)

    assert again == planned
    assert len(jobs.items) == 5


async def test_a_rate_set_paces_the_publishing() -> None:
    vins = VINS[:10]
    jobs, sender = FakeJobs(), FakeSender()
    await jobs.create(job())
    worker = Worker(jobs, FakeArchive(vins), FakeStatus({}), sender, rate=20.0)  # type: ignore[arg-type]
    began = time.monotonic()
    done = await worker.finish(job())
    assert done.published == 10 and len(sender.sent) == 10
    assert time.monotonic() - began >= 0.45  # 10 records at 20 a second


async def test_a_job_held_by_a_live_worker_is_left_to_it_and_taken_over_once_its_lease_ran_out() -> None:
    jobs, archive = FakeJobs(), FakeArchive(VINS)
    await jobs.create(job())
    clock = [AT]
    first = Worker(jobs, archive, FakeStatus({}), FakeSender(), clock=lambda: clock[0])  # type: ignore[arg-type]
    second = Worker(jobs, archive, FakeStatus({}), FakeSender(), clock=lambda: clock[0])  # type: ignore[arg-type]
    held = await jobs.claim(job(), first.me, AT, LEASE_S)
    assert held is not None
    held = await first.step(held)  # a page planned; its lease renewed
    assert held.lease_until == AT + dt.timedelta(seconds=LEASE_S)

    assert await jobs.claim(jobs.jobs[held.id], second.me, AT + dt.timedelta(seconds=5), LEASE_S) is None
    clock[0] = AT + dt.timedelta(seconds=LEASE_S + 1)  # the first worker died: nothing renewed its hold
    taken = await jobs.claim(jobs.jobs[held.id], second.me, clock[0], LEASE_S)
    assert taken is not None and taken.worker == second.me and taken.planned == 5
    with pytest.raises(LeaseLost):
        await first.step(held)  # were it alive after all, it stops at its next save
    done = await second.finish(taken)
    assert (done.state, done.planned, done.published) == ("done", 23, 23)
