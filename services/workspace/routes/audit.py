"""The audit log for auditors: its verdict and last entries on a page, and the whole log as CSV or JSON.

Who may: the compliance lead, and a person who holds the viewer role itself
(the read-only account an auditor is given). Downloads are GETs that change
nothing, so they need no CSRF token. Each one walks the hash chain first and
carries the verdict: in an ``Audit-Chain`` header, in the JSON's
``verification``, and in the CSV's ``check`` column and last row.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from services.workspace.audit_chain import export_csv, export_json, export_rows, verdict_header
from services.workspace.identity import PersonRole
from services.workspace.routes.answers import TEAMS, attachment, templates
from services.workspace.routes.deps import Audit, Time, Visit, Visitor

router = APIRouter(tags=["audit"])
SHOWN = 50  # entries on the page, newest first; the downloads hold them all
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def may_export(who: Visitor) -> Visit:
    """The visit of a compliance lead or of a person who holds the viewer role itself; others get 403."""
    roles = who.person.roles
    if PersonRole.COMPLIANCE_LEAD not in roles and PersonRole.VIEWER not in roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the audit log is for the compliance lead and viewer (auditor) accounts",
        )
    return who


Auditor = Annotated[Visit, Depends(may_export)]


@router.get("/audit", response_class=HTMLResponse, responses={403: {"description": "Not a lead or viewer"}})
async def audit_page(request: Request, who: Auditor, audit: Audit) -> HTMLResponse:
    """The chain's verdict, the download links and the last entries, newest first."""
    entries, verdict = await audit.verification()
    rows = export_rows(entries, verdict)[-SHOWN:][::-1]
    context = {"who": who, "teams": TEAMS, "roles": PersonRole, "verdict": verdict, "rows": rows}
    return templates().TemplateResponse(request, "audit.html", context)


@router.get(
    "/audit/log.{kind}",
    response_class=Response,
    responses={
        200: {
            "description": "The whole audit log with its chain fields and the verifier's verdict, as a download",
            "content": {media: {"schema": {"type": "string"}} for media in FORMATS.values()},
        },
        403: {"description": "Not a lead or viewer"},
    },
)
async def audit_download(who: Auditor, audit: Audit, clock: Time, kind: Literal["csv", "json"]) -> Response:
    entries, verdict = await audit.verification()
    now = clock.now()
    body = export_csv(entries, verdict) if kind == "csv" else export_json(entries, verdict, now)
    name = f"audit-log-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.{kind}"
    return attachment(body.encode(), FORMATS[kind], name, {"Audit-Chain": verdict_header(verdict)})
