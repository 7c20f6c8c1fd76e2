"""One vehicle's record: finding it by VIN, its page with the certificate's check, and the downloads."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from services.workspace import evidence, words
from services.workspace.multistage import previous_stage_of, stage_view
from services.workspace.routes.answers import attachment, redirect, render, see_other
from services.workspace.routes.deps import (
    VIN_MAX,
    Approvals,
    Audit,
    Pipeline,
    Reads,
    Schema,
    Settings,
    Vin,
    Visitor,
)
from services.workspace.routes.views import (
    RecordPage,
    awaits_review,
    explained,
    revisions_of,
    settled_findings,
    timeline_of,
)

router = APIRouter(tags=["records"])


@router.get("/records", **redirect("To the page of the VIN asked for"))
async def find_record(who: Visitor, vin: Annotated[str, Query(max_length=VIN_MAX)] = "") -> Response:
    wanted = vin.strip().upper()
    if not wanted:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "vin: give a VIN")
    return see_other(f"/records/{quote(wanted)}")


@router.get("/records/{vin}", response_class=HTMLResponse)
async def record_page(
    request: Request,
    who: Visitor,
    vin: Vin,
    api: Pipeline,
    audit: Audit,
    approvals: Approvals,
    schema: Schema,
    reads: Reads,
    settings: Settings,
    done: str | None = None,
) -> HTMLResponse:
    record = await reads.read(api.record(vin), None)
    certificate = await reads.read(api.certificate(vin), None)
    received = await reads.read(api.pending(vin), None)
    actions = await audit.for_target(f"record:{vin}", limit=50)
    history = approvals.history(received["approval_key"]) if received else []
    previous = previous_stage_of(received)
    base = await reads.read(api.base_certificate(previous.sha256), None) if previous else None
    check = sections = None
    if certificate is not None:
        check = evidence.check(certificate.xml, schema(), certificate.sha256, certificate.archived_at)
        zone = settings.plant_zone()
        sections = evidence.readable(certificate.xml, lambda text: words.when(text, zone))
    view = RecordPage(
        vin=vin,
        record=explained(record) if record else record,  # each open finding with its next step
        problems=reads.problems,
        reviewable=awaits_review(record),
        timeline=timeline_of(record, actions),
        revisions=revisions_of(record),
        settled=settled_findings(record),
        received=received,
        approval=history[-1].approval if history else None,
        certificate=certificate,
        check=check,
        sections=sections,
        done=done,
        stage=stage_view(history[-1].approval if history else None, record, received, base is not None),
    )
    return render(request, who, view)


@router.get(
    "/base-certificates/{sha256}.xml",
    response_class=Response,
    responses={
        200: {
            "description": "An imported base certificate (the previous stage of a multistage vehicle), exactly "
            "as imported, as a download",
            "content": {"application/xml": {"schema": {"type": "string"}}},
        },
        404: {"description": "No base certificate with that SHA-256 was imported"},
    },
)
async def download_base(
    who: Visitor, api: Pipeline, sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
) -> Response:
    xml = await api.base_certificate(sha256)
    if xml is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no base certificate with SHA-256 {sha256}")
    return attachment(xml, "application/xml", f"base-{sha256[:16]}.xml", {"X-Coc-Sha256": sha256})


@router.get(
    "/records/{vin}/evidence.zip",
    response_class=Response,
    responses={
        200: {
            "description": "The certificate's release evidence (certificate, build, approval, release, "
            "signer, chain, delivery receipts, manifest), as a download",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {"description": "No certificate with evidence for that VIN (and revision)"},
    },
)
async def download_evidence(
    who: Visitor, vin: Vin, api: Pipeline, revision: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    bundle = await api.evidence(vin, revision)
    if bundle is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no release evidence for {vin}")
    return attachment(
        bundle, "application/zip", f"evidence-{vin}{'-' + str(revision) if revision else ''}.zip"
    )


@router.get(
    "/records/{vin}/certificate.xml",
    response_class=Response,
    responses={
        200: {
            "description": "The signed IVI 2.0 document exactly as archived, as a download",
            "content": {"application/xml": {"schema": {"type": "string"}}},
        },
        404: {"description": "No certificate for that VIN (and revision)"},
    },
)
async def download(
    who: Visitor, vin: Vin, api: Pipeline, revision: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    certificate = await api.certificate(vin, revision)
    if certificate is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate for {vin}")
    # The bytes exactly as archived: any re-formatting would break the seal.
    return attachment(
        certificate.xml,
        "application/xml",
        f"{vin}-{certificate.revision}.xml",
        {"X-Coc-Sha256": certificate.sha256},
    )
