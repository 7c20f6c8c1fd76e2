"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes, their SHA-256, its link in the VIN's hash
chain (``services.archive.chain``) and the signer certificate's fingerprint.
Certificates are kept, never replaced (domain.md: keep every issued version,
ten years as the floor).

Every read is by ``_id`` (see ``shared.mongo``): a certificate's ``_id`` is its
record id (``VIN:revision``), and ``archive_heads`` keeps, per VIN, the head of
its chain and the revisions in it. Each certificate keeps its release evidence
(the build it was rendered from, why it was released, its trace); the approval
snapshots it names are kept once each in ``archive_approvals``, by the SHA-256
of their master data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.archive.chain import Head, advances, receipt_for
from shared.contracts.events import ArchiveReceipt, Document, Evidence, now
from shared.mongo import MongoDoc

COLLECTION = "archive_certificates"
HEADS = "archive_heads"
APPROVALS = "archive_approvals"
KNOWN_APPROVALS = 10_000  # approval snapshots this process knows are stored (then it forgets them all)


class CertificateStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.certificates: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.heads: AsyncCollection[MongoDoc] = db[HEADS]
        self.approvals: AsyncCollection[MongoDoc] = db[APPROVALS]
        self._known_approvals: set[str] = set()

    async def setup(self) -> None:
        await self.certificates.create_index([("vin", 1), ("revision", 1)], unique=True)

    async def store(self, document: Document, trace_id: str | None = None) -> ArchiveReceipt:
        """Store once; a redelivered document gets the receipt of the one already stored."""
        head = await self.head(document.vin)
        receipt = receipt_for(document, head, stored_time(now()))
        row = {
            **receipt.model_dump(mode="python"),
            "version_number": document.version_number,
            "xml": document.xml,
        }
        if document.evidence is not None:
            # The approval first: a stored certificate never names a snapshot that is missing.
            row["evidence"] = await self._evidence_row(document.evidence, trace_id)
        try:
            await self.certificates.insert_one({"_id": document.record_id, **row})
        except DuplicateKeyError:
            existing = await self.certificates.find_one({"_id": document.record_id})
            assert existing is not None
            receipt = receipt_of(existing)
        # After the certificate: a crash in between leaves the head one behind, and the
        # redelivered message moves it on. A VIN's messages come one at a time.
        if advances(head, receipt):
            revisions = [*(head.revisions if head else ()), receipt.revision]
            await self.heads.replace_one(
                {"_id": receipt.vin},
                {
                    "_id": receipt.vin,
                    "revision": receipt.revision,
                    "sha256": receipt.sha256,
                    "revisions": revisions,
                },
                upsert=True,
            )
        return receipt

    async def _evidence_row(self, evidence: Evidence, trace_id: str | None) -> dict[str, Any]:
        approval_sha256 = evidence.approval_sha256
        carried = evidence.approval_packed is not None
        # Unpacked only when this process has not kept it yet: most certificates share a snapshot.
        approval = evidence.approval() if carried and approval_sha256 not in self._known_approvals else None
        if approval is not None:
            # A duplicate: kept already, by this certificate redelivered or by another.
            with contextlib.suppress(DuplicateKeyError):
                await self.approvals.insert_one(
                    {"_id": approval_sha256, "approval": approval.model_dump(mode="json")}
                )
            if len(self._known_approvals) >= KNOWN_APPROVALS:
                self._known_approvals.clear()
            self._known_approvals.add(approval_sha256)
        return {
            "build": evidence.build.model_dump(mode="json"),
            "approval_key": evidence.approval_key,
            "approval_sha256": approval_sha256,
            "approval_carried": carried,
            "release": evidence.release.model_dump(mode="json") if evidence.release else None,
            "trace_id": trace_id,
        }

    async def head(self, vin: str) -> Head | None:
        """The head of the VIN's chain, if it has a certificate."""
        doc = await self.heads.find_one({"_id": vin})
        if doc is None:
            return None
        revisions = tuple(int(r) for r in doc.get("revisions") or (doc["revision"],))
        return Head(int(doc["revision"]), doc["sha256"], revisions)

    async def approval(self, sha256: str) -> dict[str, Any] | None:
        """An approval snapshot a certificate names, as stored."""
        doc = await self.approvals.find_one({"_id": sha256})
        return doc["approval"] if doc else None

    async def chain(self, vin: str) -> list[dict[str, Any]]:
        """Every certificate of the VIN in its chain's order (by ``_id``, overlapped)."""
        head = await self.head(vin)
        if head is None:
            return []
        found = await asyncio.gather(
            *(self.certificates.find_one({"_id": f"{vin}:{r}"}) for r in head.revisions)
        )
        return [doc for doc in found if doc is not None]

    async def get(self, vin: str, revision: int | None = None) -> dict[str, Any] | None:
        """A VIN's certificate of one revision, or its latest when revision is None."""
        if revision is None:
            head = await self.head(vin)
            if head is None:
                return None
            revision = head.revision
        return await self.certificates.find_one({"_id": f"{vin}:{revision}"})


def stored_time(time: dt.datetime) -> dt.datetime:
    """``time`` as MongoDB keeps it (milliseconds), so a receipt given now equals the one read back later."""
    return time.replace(microsecond=time.microsecond // 1000 * 1000)


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
