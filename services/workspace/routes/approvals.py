"""Approval master data: every approval's current version, and one approval's history and waiting records."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from services.workspace.approvals import flatten
from services.workspace.routes.answers import render
from services.workspace.routes.deps import Approvals, Pipeline, Reads, Unanswered, Visitor
from services.workspace.routes.reissue import MaybeJobs, offer
from services.workspace.routes.views import ApprovalPage, ApprovalsPage

router = APIRouter(tags=["approvals"])


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, who: Visitor, book: Approvals) -> HTMLResponse:
    current = book.current()
    counts = {a.key: len(book.history(a.key)) for a in current}
    return render(request, who, ApprovalsPage(approvals=current, counts=counts))


@router.get("/approvals/{key:path}", response_class=HTMLResponse)
async def approval(
    request: Request, who: Visitor, key: str, book: Approvals, api: Pipeline, reads: Reads, jobs: MaybeJobs
) -> HTMLResponse:
    history = book.history(key)
    if not history:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no approval {key}")
    latest = history[-1].approval
    waiting = await reads.read(api.waiting_on(key), [])
    view = ApprovalPage(
        approval=latest,
        history=history,
        rows=list(flatten(latest.certificate)),
        waiting=waiting,
        problem=reads.problem,
        reissue=await offer(key, history[-1].digest, api, jobs, Unanswered()),
    )
    return render(request, who, view)
