"""Archive's HTTP: certificates by VIN, the latest or one revision, exactly as signed."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from services.archive.adapters.store import CertificateStore
from shared.auth import Authenticator, Role

CERTIFICATE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The signed IVI 2.0 document; X-Coc-* headers carry its SHA-256, revision, "
        "version number, signer fingerprint, place in the VIN's hash chain and archive time",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    },
    401: {"description": "No bearer token, or one no role holds"},
    404: {"description": "No certificate for that VIN (and revision)"},
}


def router(store: CertificateStore, auth: Authenticator) -> APIRouter:
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
    return Response(content=doc["xml"].encode("utf-8"), media_type="application/xml", headers=headers)
