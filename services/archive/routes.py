"""Archive's HTTP: certificates by VIN, the latest or one revision, exactly as signed; their evidence."""

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from services.archive.adapters.store import MAX_LISTED, CertificateStore
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


AFFECTED_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one no role holds"},
    422: {"description": "A parameter out of its bounds, named in one line"},
}
SHA256 = r"[0-9a-f]{64}"
CURSOR = r"[A-Z0-9]{1,32}"


def router(store: CertificateStore, auth: Authenticator, receipts: Receipts) -> APIRouter:
    api = APIRouter(prefix="/v1")
    reader = Depends(auth.require())

    @api.get("/certificates", responses=AFFECTED_ANSWERS)
    async def affected(
        _role: Annotated[Role, reader],
        approval_key: Annotated[str, Query(description="Key of the approval the certificates name")] = "",
        other_than: Annotated[
            str | None, Query(description="Leave out those checked against this approval SHA-256 (hex)")
        ] = None,
        limit: Annotated[
            str, Query(description=f"Certificates in this page, 0 (the total alone) to {MAX_LISTED}")
        ] = "100",
        after: Annotated[str | None, Query(description="``next`` of the page before")] = None,
        with_build: Annotated[
            str, Query(description="true: add each certificate's archived build record (build)")
        ] = "false",
    ) -> dict[str, Any]:
        """The VINs whose newest certificate was checked against ``approval_key`` with another approval SHA-256.

        What an approval change affects: ``total`` of them, one page of ``items``
        (vin, revision, version_number, approval_sha256, archived_at; ``build`` with
        ``with_build``) by VIN, and ``next``, the cursor of the following page (null at the end).
        A parameter out of its bounds is a 422 naming it in one line.
        """
        try:
            size = affected_query(approval_key, other_than, limit, after)
            add_builds = flag("with_build", with_build)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        total, rows = await store.affected(approval_key, other_than, size, after)
        items = [
            {
                "vin": row["_id"],
                "revision": row["revision"],
                "version_number": row.get("version_number"),
                "approval_sha256": row.get("approval_sha256"),
                "archived_at": _iso(row.get("archived_at")),
            }
            for row in rows
        ]
        if add_builds:
            builds = await store.builds([f"{item['vin']}:{item['revision']}" for item in items])
            for item in items:
                item["build"] = builds.get(f"{item['vin']}:{item['revision']}")
        more = size > 0 and len(rows) == size
        return {"total": total, "items": items, "next": items[-1]["vin"] if items and more else None}

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


def affected_query(approval_key: str, other_than: str | None, limit: str, after: str | None) -> int:
    """The page size of a valid ``/v1/certificates`` query; ValueError naming the parameter otherwise."""
    if not 1 <= len(approval_key) <= 400 or not approval_key.isprintable():
        raise ValueError("approval_key: required, printable, at most 400 characters")
    if other_than is not None and not re.fullmatch(SHA256, other_than):
        raise ValueError("other_than: an approval SHA-256, 64 lower-case hex digits")
    if after is not None and not re.fullmatch(CURSOR, after):
        raise ValueError("after: the next cursor of a page before (a VIN)")
    if not limit.isdigit() or not 0 <= int(limit) <= MAX_LISTED:
        raise ValueError(f"limit: a whole number from 0 (the total alone) to {MAX_LISTED}")
    return int(limit)


def flag(name: str, value: str) -> bool:
    """A true/false query parameter; ValueError naming it otherwise."""
    if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"{name}: true or false")
    return value.lower() in ("true", "1")


def _iso(value: Any) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


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
