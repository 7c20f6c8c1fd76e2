"""Approval master data uploaded by the type-approval team: dry run, diff, impact, publish under their name.

1. Dry run: the file (XLSX, CSV, JSON or an IVI 2.0 certificate) is parsed and
   every row checked; errors name row, column and rule, on the page and as CSV.
2. Diff: each approval against the current version of its key, by IVI path.
3. Impact: the records waiting on each key, the archived certificates it changes.
4. Publish: each new or changed approval to coc.approvals.v1 with its source
   (the person, the workspace), audited. Nothing is published while a row has
   an error, and what is published is what the page showed: the parsed upload
   stays server-side under a token of the person's session, and the form
   carries the digest of the approvals shown (``upload.staged``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, cast

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import HTMLResponse, Response

from services.workspace.audit_chain import safe_cell
from services.workspace.identity import PersonRole
from services.workspace.routes.answers import attachment, redirect, render, see_other
from services.workspace.routes.deps import (
    Approvals,
    Audit,
    Pipeline,
    Settings,
    Time,
    Topics,
    Uploads,
    Visit,
    Visitor,
    needs,
)
from services.workspace.routes.views import Page
from services.workspace.upload import files, template
from services.workspace.upload.diff import KeyDiff, against
from services.workspace.upload.impact import MAX_KEYS, Impact, impact_of
from services.workspace.upload.staged import Staged
from shared import topics
from shared.contracts.approvals import ApprovalSource
from shared.contracts.base import Text
from shared.ivi import IviSchema

router = APIRouter(tags=["approvals"])
TypeApproval = Annotated[Visit, Depends(needs(PersonRole.TYPE_APPROVAL))]
SHOWN_ERRORS: Final = 200  # errors on the page; the CSV has them all
_UNSAFE = re.compile(r"[^\w .()-]+")
GONE = "no such upload in your session: it was published already, or is over 30 minutes old; upload it again"


def ivi_schema(config: Settings) -> IviSchema:
    return IviSchema.load(config.xsd_path())


Schema = Annotated[IviSchema, Depends(ivi_schema)]


@dataclass(frozen=True)
class UploadPage:
    template: ClassVar[str] = "upload.html"
    columns: int
    max_bytes: int
    max_rows: int
    published: int | None = None  # approvals just published, said once


@dataclass(frozen=True)
class UploadResultPage:
    template: ClassVar[str] = "upload_result.html"
    staged: Staged
    errors: list[files.RowError]
    diffs: list[KeyDiff]
    impacts: dict[str, Impact]
    max_keys: int
    publishable: int  # approvals that publishing would send (new or changed)


def show(request: Request, who: Visit, view: UploadPage | UploadResultPage) -> HTMLResponse:
    return render(request, who, cast(Page, view))


@router.get("/approvals/upload", response_class=HTMLResponse)
async def upload_form(
    request: Request, who: Visitor, schema: Schema, published: Annotated[int | None, Query(ge=0)] = None
) -> HTMLResponse:
    """What the template is and what each step does; the form for the type-approval role."""
    view = UploadPage(len(template.template_columns(schema)), files.MAX_BYTES, files.MAX_ROWS, published)
    return show(request, who, view)


@router.get("/approvals/upload/template.{kind}")
async def template_file(kind: str, _who: Visitor, schema: Schema) -> Response:
    """The empty template: the columns of the contract and the IVI schema, with notes (XLSX) or the header (CSV)."""
    if kind == "xlsx":
        return attachment(template.as_xlsx(schema), template.XLSX_TYPE, "approval-template.xlsx")
    if kind == "csv":
        return attachment(template.as_csv(schema), "text/csv; charset=utf-8", "approval-template.csv")
    raise HTTPException(status.HTTP_404_NOT_FOUND, "the template is served as .xlsx and .csv")


def declared_size(request: Request) -> None:
    """413 before the body is read when it declares more than an upload may hold (with room for the form)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > files.MAX_BYTES + 64_000:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"file: an upload is at most {files.MAX_BYTES} bytes"
        )


@router.post(
    "/approvals/upload",
    dependencies=[Depends(declared_size)],
    **redirect("Checked: to the dry run's page", {413: {"description": "The file is over the size limit"}}),
)
async def upload(
    who: TypeApproval,
    file: Annotated[UploadFile, File(description="XLSX, CSV, JSON or an IVI 2.0 certificate")],
    schema: Schema,
    store: Uploads,
    clock: Time,
) -> Response:
    """Step 1, the dry run: every row parsed and checked; nothing is published here."""
    content = await file.read(files.MAX_BYTES + 1)
    parsed = files.parse(content, schema)
    name = _UNSAFE.sub("_", (file.filename or "upload").rsplit("/", 1)[-1])[:120] or "upload"
    staged = store.put(who.session.key, who.person.name, name, content, parsed, clock.now())
    return see_other(f"/approvals/upload/{staged.token}")


def staged_upload(token: str, who: Visitor, store: Uploads, clock: Time) -> Staged:
    staged = store.get(token, who.session.key, clock.now())
    if staged is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, GONE)
    return staged


Upload = Annotated[Staged, Depends(staged_upload)]


@router.get("/approvals/upload/{token}", response_class=HTMLResponse)
async def result(
    request: Request, who: Visitor, staged: Upload, book: Approvals, api: Pipeline
) -> HTMLResponse:
    """Steps 1 to 3 on one page: the dry run's errors, or the diff and the impact and the publish form."""
    parsed = staged.parsed
    diffs = [] if parsed.errors else against(book.get, parsed.approvals)
    impacts = await impact_of(api, diffs) if diffs else {}
    view = UploadResultPage(
        staged=staged,
        errors=list(parsed.errors[:SHOWN_ERRORS]),
        diffs=diffs,
        impacts=impacts,
        max_keys=MAX_KEYS,
        publishable=sum(1 for diff in diffs if not diff.unchanged),
    )
    return show(request, who, view)


@router.get("/approvals/upload/{token}/errors.csv")
async def errors_csv(staged: Upload) -> Response:
    """Every error of the dry run: row, column, rule, message."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["row", "column", "rule", "message"])
    for error in staged.parsed.errors:
        writer.writerow([error.row, safe_cell(error.column), error.rule, safe_cell(error.message)])
    return attachment(out.getvalue().encode("utf-8"), "text/csv; charset=utf-8", "approval-upload-errors.csv")


@router.get("/approvals/upload/{token}/approvals.xlsx")
async def approvals_xlsx(staged: Upload, schema: Schema) -> Response:
    """The upload's good rows in the template: a certificate or a JSON file as a sheet to edit."""
    content = template.as_xlsx(schema, staged.parsed.approvals)
    return attachment(content, template.XLSX_TYPE, "approvals.xlsx")


@router.post(
    "/approvals/upload/{token}/publish",
    **redirect(
        "Published: to the approvals, which say so",
        {
            404: {"description": "No such upload in this session"},
            409: {"description": "The upload has errors, or is not the one the page showed"},
        },
    ),
)
async def publish(
    token: str,
    who: TypeApproval,
    digest: Annotated[str, Form(min_length=64, max_length=64)],
    store: Uploads,
    book: Approvals,
    emitter: Topics,
    audit: Audit,
    clock: Time,
    comment: Annotated[Text, Form(max_length=2000)] = "",
) -> Response:
    """Step 4: each new or changed approval to coc.approvals.v1 under the person's name, and to the audit log."""
    now = clock.now()
    staged = store.get(token, who.session.key, now)
    if staged is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, GONE)
    if staged.parsed.errors or not staged.parsed.approvals:
        raise HTTPException(status.HTTP_409_CONFLICT, "the upload has errors: nothing is published")
    if digest != staged.digest:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "digest: not the upload this page showed; check it again"
        )
    store.take(token, who.session.key, now)
    source = ApprovalSource(by=who.person.name, via="workspace", at=now, comment=comment.strip())
    published = 0
    for diff in against(book.get, staged.parsed.approvals):
        if diff.unchanged:
            continue
        approval = diff.approval.model_copy(update={"source": source})
        await emitter.send(topics.APPROVALS, approval, key=approval.key, correlation_id=approval.key)
        book.add(approval, now)
        await audit.record(who.person, "approval", f"approval:{approval.key}", _audited(diff, staged), now)
        published += 1
    return see_other(f"/approvals/upload?published={published}")


def _audited(diff: KeyDiff, staged: Staged) -> dict[str, Any]:
    changed = [[change.path, change.old, change.new] for change in diff.changes[:50]]
    return {
        "new": diff.new,
        "changed": changed,
        "more": max(0, len(diff.changes) - 50),
        "file": staged.filename,
    }
