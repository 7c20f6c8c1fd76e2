"""The re-issue worker: plans each active job page by page, then publishes its records in bounded batches.

One task in the workspace process (started and stopped with it). Every step
reads what it needs from the job's document and writes its result before the
job moves on, so a workspace killed at any moment finishes the job when it
starts again: a planning page planned twice keeps its first items (their
``_id``s and the (job, vin) index refuse the repeats), a batch published twice
is the same records again, which validation takes as repeats. Nothing holds
more than one page or one batch in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel

from services.workspace.reissue.plan import Job, ReissueError, next_revision, reissue_record
from services.workspace.reissue.store import JobStore, LeaseLost
from shared import topics

log = logging.getLogger(__name__)

PLAN_PAGE = 1000  # affected certificates planned per step (the most the archive lists at once)
PUBLISH_BATCH = 200  # records published per step
LOOKUPS = 8  # status reads at once while planning
IDLE_S = 2.0  # how long the worker waits for a new job before it looks again
LEASE_S = 20.0  # a job's worker renews its hold at each step; a killed one's is taken over after this
PAUSE_AFTER_FAULT_S = 5.0


class Archive(Protocol):
    async def affected(
        self, approval_key: str, *, other_than: str | None, limit: int, after: str | None, with_build: bool
    ) -> dict[str, Any]: ...


class Status(Protocol):
    async def record(self, vin: str) -> dict[str, Any] | None: ...


class Sender(Protocol):
    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Worker:
    def __init__(
        self,
        store: JobStore,
        archive: Archive,
        status: Status,
        sender: Sender,
        clock: Callable[[], dt.datetime] = _now,
        rate: float = 0.0,
    ) -> None:
        self.store, self.archive, self.status, self.sender, self.clock = store, archive, status, sender, clock
        self.rate = rate  # records published per second at most (0: no limit)
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    async def step(self, job: Job) -> Job:
        """One page planned or one batch published; the job as saved after it."""
        if job.state == "planning":
            job = await self._plan_page(job)
        elif job.state == "publishing":
            job = await self._publish_batch(job)
        if job.worker is not None:  # held: each step renews the lease
            job = dataclasses.replace(job, lease_until=self.clock() + dt.timedelta(seconds=LEASE_S))
        await self.store.save(job)
        return job

    async def finish(self, job: Job) -> Job:
        """Step ``job`` until it is no longer active."""
        while job.active:
            job = await self.step(job)
        return job

    async def _plan_page(self, job: Job) -> Job:
        page = await self.archive.affected(
            job.approval_key,
            other_than=job.approval_sha256,
            limit=PLAN_PAGE,
            after=job.plan_after,
            with_build=True,
        )
        items: list[dict[str, Any]] = list(page.get("items") or [])
        current = await self._status_revisions([str(item["vin"]) for item in items])
        records, problems = [], []
        for item in items:
            try:
                revision = next_revision(int(item["revision"]), current.get(str(item["vin"])))
                records.append(reissue_record(job, item, item.get("build"), revision))
            except (ReissueError, ValueError) as exc:
                problems.append(f"{item.get('vin')}: {exc}"[:300])
        await self.store.add_items(job, job.planned, records)
        after = page.get("next")
        return dataclasses.replace(
            job,
            planned=job.planned + len(records),
            plan_after=after,
            skipped=job.skipped + len(problems),
            error=_with(job.error, problems),
            state="planning" if after else "publishing",
        )

    async def _status_revisions(self, vins: list[str]) -> dict[str, int]:
        slots = asyncio.Semaphore(LOOKUPS)

        async def one(vin: str) -> tuple[str, int | None]:
            async with slots:
                found = await self.status.record(vin)
            return vin, int(found["revision"]) if found and found.get("revision") is not None else None

        answers = await asyncio.gather(*(one(vin) for vin in vins))
        return {vin: revision for vin, revision in answers if revision is not None}

    async def _publish_batch(self, job: Job) -> Job:
        size = PUBLISH_BATCH if self.rate <= 0 else max(1, min(PUBLISH_BATCH, int(self.rate)))
        end = min(job.published + size, job.planned)
        records = await self.store.batch(job, job.published, end)
        began = time.monotonic()
        await asyncio.gather(
            *(self.sender.send(topics.BUILDS, r, key=r.vin, correlation_id=r.record_id) for r in records)
        )
        if self.rate > 0:  # the batch's share of a second at the rate set
            await asyncio.sleep(max(0.0, len(records) / self.rate - (time.monotonic() - began)))
        if end < job.planned:
            return dataclasses.replace(job, published=end)
        return dataclasses.replace(job, published=end, state="done", finished_at=self.clock())

    # -- the task ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                for job in await self.store.active():
                    claimed = await self.store.claim(job, self.me, self.clock(), LEASE_S)
                    if claimed is not None:
                        await self.finish(claimed)
                pause = IDLE_S
            except LeaseLost as exc:
                log.info("%s", exc)
                pause = IDLE_S
            except Exception:  # a service or the database away: the job's document says where to go on
                log.warning("re-issue interrupted; it goes on from where its job says", exc_info=True)
                pause = PAUSE_AFTER_FAULT_S
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), pause)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _with(error: str | None, problems: list[str]) -> str | None:
    if not problems:
        return error
    text = "; ".join([*(error.split("; ") if error else []), *problems][:20])
    return text[:2000]
