"""Re-issue after an approval correction: started by the compliance lead from the approval's page, then followed.

``POST /reissue`` starts a job for an approval's current version (the archive
counts the certificates still naming another version of it); ``/reissue/{job}``
shows its progress and, once done, its summary; ``/reissue/{job}/progress`` is
the same counts as JSON, which the page reads every few seconds. The job itself
runs in the workspace's re-issue worker (``services.workspace.reissue``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from services.workspace.approvals import Change
from services.workspace.reissue.plan import Job, job_time, new_job_id
from services.workspace.reissue.store import JobStore
from services.workspace.reissue.worker import Worker
from services.workspace.routes.answers import redirect, render, see_other
from services.workspace.routes.deps import Approvals, Audit, Lead, Pipeline, Reads, Time, Unanswered, Visitor

if TYPE_CHECKING:
    from services.workspace.routes.views import Page

router = APIRouter(tags=["re-issue"])
JOB_ID = re.compile(r"reissue-[0-9]{14}-[0-9a-f]{6}")
REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such approval"},
    409: {"description": "Nothing to re-issue: no archived certificate names another version of it"},
}


@dataclass
class Reissue:
    """The jobs' store and the worker that carries them out (``app.state.reissue``)."""

    jobs: JobStore
    worker: Worker


def reissue(request: Request) -> Reissue | None:
    """The app's re-issue parts; None in an app built without them (a test of other rooms)."""
    found: Reissue | None = getattr(request.app.state, "reissue", None)
    return found


def reissue_needed(parts: Annotated[Reissue | None, Depends(reissue)]) -> Reissue:
    if parts is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "re-issue is not set up in this workspace")
    return parts


MaybeJobs = Annotated[Reissue | None, Depends(reissue)]
Jobs = Annotated[Reissue, Depends(reissue_needed)]


@dataclass(frozen=True)
class Offer:
    """What the approval's page says of a re-issue: how many certificates it would correct, and a job under way."""

    count: int
    active: Job | None
    problem: str | None = None


@dataclass(frozen=True)
class ReissuePage:
    template: ClassVar[str] = "reissue.html"
    job: Job
    archived: int | None  # re-issued certificates archived so far (None: the archive did not answer)
    problem: str | None


def changed_by(change: Change) -> str:
    """Who changed the approval: the person its source names (interface 1), else who published it."""
    source = getattr(change.approval, "source", None)
    by = getattr(source, "by", None)
    return str(by) if by else change.by


async def offer(
    key: str, digest: str, api: Pipeline, jobs: Reissue | None, reads: Unanswered
) -> Offer | None:
    """The approval page's re-issue block: certificates naming another version of ``key``, a job under way."""
    if jobs is None:
        return None
    found = await reads.read(api.affected(key, other_than=digest, limit=0), None)
    active = next((j for j in await jobs.jobs.active() if j.approval_key == key), None)
    if found is None:
        return Offer(0, active, reads.problem)
    return Offer(int(found.get("total") or 0), active)


@router.post("/reissue", **redirect("Started: to the job's page", REFUSED))
async def start(
    who: Lead,
    approval_key: Annotated[str, Form(min_length=1, max_length=400)],
    book: Approvals,
    api: Pipeline,
    jobs: Jobs,
    audit: Audit,
    clock: Time,
) -> Response:
    """Re-issue every archived certificate that names another version of the approval than its current one."""
    history = book.history(approval_key)
    if not history:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"approval_key: no approval {approval_key}")
    latest = history[-1]
    running = next((j for j in await jobs.jobs.active() if j.approval_key == approval_key), None)
    if running is not None:
        return see_other(f"/reissue/{running.id}")
    found = await api.affected(approval_key, other_than=latest.digest, limit=0)
    total = int(found.get("total") or 0)
    if total == 0:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "approval_key: no archived certificate names another version of it"
        )
    at = job_time(clock.now())
    job = Job(
        id=new_job_id(at),
        approval_key=approval_key,
        approval_sha256=latest.digest,
        changed_by=changed_by(latest),
        started_by=who.person.name,
        started_at=at,
        expected=total,
    )
    await jobs.jobs.create(job)
    change = {"job": job.id, "approval_sha256": job.approval_sha256, "certificates": total}
    await audit.record(who.person, "re-issue", f"approval:{approval_key}", change, at)
    jobs.worker.wake.set()
    return see_other(f"/reissue/{quote(job.id)}")


async def _job(job_id: str, jobs: Reissue) -> Job:
    found = await jobs.jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no re-issue job {job_id}")
    return found


async def _archived(job: Job, api: Pipeline, reads: Reads) -> int | None:
    """The job's certificates archived so far: planned ones no longer naming another version of the approval."""
    if job.state == "planning":
        return 0
    left = await reads.read(api.affected(job.approval_key, other_than=job.approval_sha256, limit=0), None)
    if left is None:
        return None
    return max(0, job.planned - int(left.get("total") or 0))


def progress_of(job: Job, archived: int | None) -> dict[str, Any]:
    return {
        "job": job.id,
        "state": job.state,
        "expected": job.expected,
        "planned": job.planned,
        "published": job.published,
        "skipped": job.skipped,
        "archived": archived,
        "finished": job.state == "done" and archived is not None and archived >= job.planned,
    }


@router.get("/reissue/{job_id}", response_class=HTMLResponse)
async def page(
    request: Request, who: Visitor, job_id: str, jobs: Jobs, api: Pipeline, reads: Reads
) -> HTMLResponse:
    job = await _job(job_id, jobs)
    view = ReissuePage(job, await _archived(job, api, reads), reads.problem)
    return render(request, who, cast("Page", view))  # a page of its own, outside views' union


@router.get("/reissue/{job_id}/progress")
async def progress(_who: Visitor, job_id: str, jobs: Jobs, api: Pipeline, reads: Reads) -> dict[str, Any]:
    """The job's counts, for the page to follow without a reload."""
    job = await _job(job_id, jobs)
    return progress_of(job, await _archived(job, api, reads))
