"""Archive's HTTP: certificates by VIN, the latest or one revision, exactly as signed; their evidence."""

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from services.archive.adapters.store import CertificateStore
from services.archive.evidence import EvidenceError, bundle
from services.archive.stored_xml import xml_of
from shared.auth import Authenticator, Role

Receipts = Callable[[str], Awaitable[Sequence[dict[str, Any]] | str]]
EVIDENCE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A ZIP of the certificate's release evidence: the signed certificate, the build, the "
        "approval snapshot, the release (policy, settled findings, reviewer), the signer certificate, the "
        "hash chain, the delivery receipts and a manifest with each file's SHA-256",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    401: {"description": "No bearer token, or one no role holds"},
    404: {"description": "No certificate for that VIN (and revision)"},
    409: {"description": "The certificate was archived without its evidence"},
}

CERTIFICATE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The signed IVI 2.0 document; X-Coc-* headers carry its SHA-256, revision, "
        "version number, signer fingerprint, place in the VIN's hash chain and archive time",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    },
    401: {"description": "No bearer token, or one no role holds"},
    404: {"description": "No certificate for that VIN (and revision)"},
}


def router(store: CertificateStore, auth: Authenticator, receipts: Receipts) -> APIRouter:
    api = APIRouter(prefix="/v1")
    reader = Depends(auth.require())

    @api.get("/certificates/{vin}", response_class=Response, responses=CERTIFICATE_ANSWERS)
    async def latest(vin: str, _role: Annotated[Role, reader]) -> Response:
        """The VIN's current certificate, the signed IVI 2.0 XML exactly as archived."""
        return as_response(await store.get(vin.upper()), vin)

    @api.get("/certificates/{vin}/{revision}", response_class=Response, responses=CERTIFICATE_ANSWERS)
    async def one(vin: str, revision: int, _role: Annotated[Role, reader]) -> Response:
        """The certificate of one revision of the VIN, exactly as archived."""
        return as_response(await store.get(vin.upper(), revision), f"{vin} revision {revision}")

    async def evidence(vin: str, revision: int | None) -> Response:
        row = await store.get(vin, revision)
        if row is None:
            what = vin if revision is None else f"{vin} revision {revision}"
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate for {what}")
        named = (row.get("evidence") or {}).get("approval_sha256")
        approval = await store.approval(named) if named else None
        try:
            data = bundle(row, approval, await store.chain(vin), await receipts(vin))
        except EvidenceError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        name = f"evidence-{row['vin']}-{row['revision']}.zip"
        return Response(
            content=data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Coc-Sha256": row["sha256"]},
        )

    @api.get("/evidence/{vin}", response_class=Response, responses=EVIDENCE_ANSWERS)
    async def latest_evidence(vin: str, _role: Annotated[Role, reader]) -> Response:
        """The release evidence of the VIN's current certificate, as one ZIP."""
        return await evidence(vin.upper(), None)

    @api.get("/evidence/{vin}/{revision}", response_class=Response, responses=EVIDENCE_ANSWERS)
    async def one_evidence(vin: str, revision: int, _role: Annotated[Role, reader]) -> Response:
        """The release evidence of one revision's certificate, as one ZIP."""
        return await evidence(vin.upper(), revision)

    return api


def as_response(doc: dict[str, Any] | None, what: str) -> Response:
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate for {what}")
    archived_at = doc.get("archived_at")
    if archived_at is not None and archived_at.tzinfo is None:
        archived_at = archived_at.replace(tzinfo=dt.UTC)  # stored as UTC
    headers = {
        "X-Coc-Revision": str(doc["revision"]),
        "X-Coc-Sha256": doc["sha256"],
        "X-Coc-Previous-Sha256": doc.get("previous_sha256") or "",
        "X-Coc-Signer-Fingerprint": doc["signer_fingerprint"],
        "X-Coc-Version-Number": str(doc.get("version_number", "")),
        "X-Coc-Archived-At": archived_at.isoformat() if archived_at else "",
    }
    # The bytes exactly as signed: any re-formatting would break the signature.
    return Response(content=xml_of(doc), media_type="application/xml", headers=headers)
