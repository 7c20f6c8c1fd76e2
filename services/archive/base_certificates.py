"""Imported base certificates: the previous stage's IVI 2.0 documents a later stage builds on.

The approval authority gives the next-stage manufacturer (a body builder) the
base vehicle's signed certificate. Imported here, it is checked (the IVI 2.0
schema as published, the seal's integrity with the project's verifier:
``shared.base_certificate``), kept byte-exact once by its SHA-256 in
``archive_base_certificates``, and its facts are answered as the
``previous_stage`` an MES puts into the completed vehicle's build record.

Trust in the previous manufacturer's seal is not given here: the seal is intact,
and who sealed it is named, but whether that signer is the base vehicle's
manufacturer is for the authority that handed the document over.
"""

import asyncio
import datetime as dt
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.archive.stored_xml import packed, xml_of
from shared.auth import Authenticator, Role
from shared.base_certificate import BASE_MAX_BYTES, BaseCertificate, BaseCertificateError, read_base
from shared.ivi import IviSchema
from shared.mongo import MongoDoc

COLLECTION: Final = "archive_base_certificates"
TRUST: Final = (
    "seal intact; the signer is named, not trusted by this product: trust in the previous "
    "manufacturer's seal is for the authority that gave the document"
)
Sha256 = Annotated[
    str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the certificate's bytes")
]


class BaseCertificates:
    """The archive_base_certificates collection: one row per document, ``_id`` its SHA-256."""

    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.rows: AsyncCollection[MongoDoc] = db[COLLECTION]

    async def keep(self, xml: bytes, base: BaseCertificate, by: str) -> tuple[MongoDoc, bool]:
        """Store the document once; the row and whether it was new."""
        row: MongoDoc = {
            "_id": base.previous_stage.sha256,
            **packed(xml),
            "previous_stage": base.previous_stage.model_dump(mode="json"),
            "stage_of_completion": base.stage_of_completion,
            "category": base.category,
            "signer": base.signer,
            "signer_fingerprint": base.signer_fingerprint,
            "imported_at": dt.datetime.now(dt.UTC),
            "imported_by": by,
        }
        try:
            await self.rows.insert_one(row)
        except DuplicateKeyError:
            kept = await self.get(base.previous_stage.sha256)
            if kept is not None:
                return kept, False
            raise
        return row, True

    async def get(self, sha256: str) -> MongoDoc | None:
        found: MongoDoc | None = await self.rows.find_one({"_id": sha256})
        return found


def facts(row: MongoDoc) -> dict[str, Any]:
    """What an import answers: the previous stage for the build record, and what was checked."""
    imported = row.get("imported_at")
    if isinstance(imported, dt.datetime) and imported.tzinfo is None:
        imported = imported.replace(tzinfo=dt.UTC)  # stored as UTC
    return {
        "previous_stage": row["previous_stage"],
        "stage_of_completion": row.get("stage_of_completion"),
        "category": row.get("category"),
        "signer": row.get("signer"),
        "signer_fingerprint": row.get("signer_fingerprint"),
        "seal": TRUST,
        "imported_at": imported.isoformat() if isinstance(imported, dt.datetime) else None,
    }


async def bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BASE_MAX_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BASE_MAX_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"body: larger than {BASE_MAX_BYTES} bytes; not a certificate"
    )


IMPORT_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Imported before: the same facts"},
    201: {"description": "Imported: the previous stage's facts, the signer, what the seal check says"},
    401: {"description": "No bearer token, or one no role holds"},
    403: {"description": "Neither the MES nor the type-approval role"},
    413: {"description": "Larger than a certificate can be"},
    422: {"description": "Not a valid, sealed IVI 2.0 document; one line naming the element or check"},
}
XML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string", "description": "signed IVI 2.0 XML"}}},
    }
}


def router(store: BaseCertificates, auth: Authenticator, schema: IviSchema) -> APIRouter:
    api = APIRouter(prefix="/v1/base-certificates", tags=["base certificates"])
    reader = Depends(auth.require())
    importer = Depends(auth.require(Role.MES, Role.TYPE_APPROVAL))

    @api.post("", responses=IMPORT_ANSWERS, openapi_extra=XML_BODY)
    async def import_base(
        request: Request, response: Response, role: Annotated[Role, importer]
    ) -> dict[str, Any]:
        """Import a previous stage's signed IVI 2.0 document; answers the ``previous_stage`` of its vehicle.

        The schema as published and the seal's integrity are checked; the document is kept once,
        byte-exact, by its SHA-256. Whether its signer is trusted is not decided here.
        """
        xml = await bounded_body(request)
        try:
            base = await asyncio.to_thread(read_base, xml, schema)
        except BaseCertificateError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"certificate: {exc}") from None
        row, new = await store.keep(xml, base, f"{role.value} token")
        response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        return facts(row)

    @api.get("/{sha256}", response_class=Response, responses={404: {"description": "Not imported"}})
    async def one(sha256: Sha256, _role: Annotated[Role, reader]) -> Response:
        """An imported base certificate exactly as it was imported."""
        row = await _found(store, sha256)
        return Response(content=xml_of(row), media_type="application/xml", headers={"X-Coc-Sha256": sha256})

    @api.get("/{sha256}/facts", responses={404: {"description": "Not imported"}})
    async def what(sha256: Sha256, _role: Annotated[Role, reader]) -> dict[str, Any]:
        """The facts of an imported base certificate: its previous stage, signer and seal check."""
        return facts(await _found(store, sha256))

    return api


async def _found(store: BaseCertificates, sha256: str) -> MongoDoc:
    row = await store.get(sha256)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no base certificate with SHA-256 {sha256}")
    return row
