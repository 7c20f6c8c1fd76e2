"""The archive_certificates collection: each signed certificate once per VIN and revision.

Every certificate keeps its bytes (packed, ``services.archive.stored_xml``), their SHA-256, its link in the VIN's hash
chain (``services.archive.chain``) and the signer certificate's fingerprint.
Certificates are kept, never replaced (domain.md: keep every issued version,
ten years as the floor).

Every read is by ``_id`` (see ``shared.mongo``): a certificate's ``_id`` is its
record id (``VIN:revision``), and ``archive_heads`` keeps, per VIN, the head of
its chain and the revisions in it. The head also names the approval its newest
certificate was checked against (key and master-data SHA-256, indexed), so the
certificates an approval change affects are listed from it (``affected``), and
``archive_approval_counts`` counts the heads per approval key and SHA-256
(``$inc`` as heads move: a count never scans the archive, see
../shared/ferretdb-measured.md). Each certificate keeps its release evidence
(the build it was rendered from, why it was released, its trace); the approval
snapshots it names are kept once each in ``archive_approvals``, by the SHA-256
of their master data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.archive.chain import Head, advances, receipt_for
from services.archive.content import same_document
from services.archive.stored_xml import packed, xml_of
from shared.contracts.events import ArchiveReceipt, Document, Evidence, now
from shared.increments import Increments
from shared.mongo import MongoDoc, insert_new

COLLECTION = "archive_certificates"
HEADS = "archive_heads"
APPROVALS = "archive_approvals"
COUNTS = "archive_approval_counts"
Pair = tuple[str | None, str | None]  # an approval key and master-data SHA-256, (None, None) without evidence
MAX_LISTED = 1_000  # certificates in one page of ``affected``
KNOWN_APPROVALS = 10_000  # approval snapshots this process knows are stored (then it forgets them all)
RECEIPTS_KEPT = 100_000  # receipts stored in bulk and not yet asked for (then forgotten: they are stored)


@dataclass(frozen=True)
class _Next:
    """A certificate planned as the next link of its VIN's chain, with the head it follows."""

    document: Document
    trace_id: str | None
    head_doc: MongoDoc
    head: Head
    receipt: ArchiveReceipt


class OtherCertificate(Exception):
    """A signed document for a VIN and revision archived already with another document: not archived."""

    def __init__(self, document: Document, kept_sha256: str) -> None:
        super().__init__(
            f"{document.record_id} is archived already as SHA-256 {kept_sha256}; this signed document "
            f"(SHA-256 {document.sha256}) holds another document and is not archived: the kept one stands"
        )


class CertificateStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.certificates: AsyncCollection[MongoDoc] = db[COLLECTION]
        self.heads: AsyncCollection[MongoDoc] = db[HEADS]
        self.approvals: AsyncCollection[MongoDoc] = db[APPROVALS]
        self.counts: AsyncCollection[MongoDoc] = db[COUNTS]
        self._counts = Increments(self.counts, "count")
        self._known_approvals: set[str] = set()
        self._stored: dict[str, ArchiveReceipt] = {}  # stored in bulk by ``store_firsts``

    async def setup(self) -> None:
        await self.certificates.create_index([("vin", 1), ("revision", 1)], unique=True)
        # The certificates of one approval, by VIN: what an approval change affects (``affected``).
        await self.heads.create_index([("approval_key", 1), ("_id", 1)])

    async def store_firsts(self, firsts: list[tuple[Document, str | None]]) -> int:
        """Store the first certificate of each new VIN in two requests for all; how many were stored.

        IviVersionNumber 1 is the first certificate render numbered for its VIN,
        so the VIN's chain starts with it (no head, no previous link). Of the
        VINs' first documents of a batch (``firsts``, one per VIN), those with
        that number are inserted in one request, then the heads of those
        inserted in a second. A certificate stored
        already is refused as a duplicate and takes ``store``'s path. A head
        refused as a duplicate means the VIN has a chain after all (a first
        certificate sent again after later ones, from a dead-letter queue):
        the certificate just inserted is taken back, before anyone saw its
        receipt, and stored by ``store`` as the next link.
        """
        at = stored_time(now())
        receipts: dict[str, ArchiveReceipt] = {}
        rows: list[MongoDoc] = []
        for document, trace_id in firsts:
            if document.version_number != 1:
                continue
            receipt = receipt_for(document, None, at)
            receipts[document.record_id] = receipt
            rows.append({"_id": document.record_id, **await self._row(document, receipt, trace_id)})
        inserted = await insert_new(self.certificates, rows)
        documents = {document.record_id: document for document, _trace in firsts}
        headed = await insert_new(
            self.heads,
            [
                self._head_doc(receipt, [], documents[record_id])
                for record_id, receipt in receipts.items()
                if record_id in inserted
            ],
        )
        await self._count(
            [approval_of(documents[record_id]) for record_id in inserted if receipts[record_id].vin in headed]
        )
        if len(self._stored) > RECEIPTS_KEPT:
            self._stored.clear()
        for record_id in inserted:
            receipt = receipts[record_id]
            if receipt.vin in headed:
                self._stored[record_id] = receipt
            else:
                await self.certificates.delete_one({"_id": record_id})
        return len(headed) + await self._store_next([(d, t) for d, t in firsts if d.version_number != 1], at)

    async def _store_next(self, documents: list[tuple[Document, str | None]], at: dt.datetime) -> int:
        """Store the next link of each VIN's chain in bulk (a re-issue's certificates); how many were stored.

        The heads are read in one request, the certificates that advance them
        inserted in a second and the heads replaced in a third (each guarded by
        the revision read), the counts moved once per approval version. A
        certificate whose head moved meanwhile is taken back before anyone saw
        its receipt, and ``store`` handles it alone, as it does every document
        not advancing its head.
        """
        if not documents:
            return 0
        found = self.heads.find({"_id": {"$in": [d.vin for d, _t in documents][:MAX_LISTED]}})
        heads = {doc["_id"]: doc async for doc in found}
        plans: list[_Next] = []
        for document, trace_id in documents:
            head_doc = heads.get(document.vin)
            head = head_of(head_doc)
            if head_doc is not None and head is not None and head.revision < document.revision:
                plans.append(_Next(document, trace_id, head_doc, head, receipt_for(document, head, at)))
        rows = [
            {"_id": p.document.record_id, **await self._row(p.document, p.receipt, p.trace_id)} for p in plans
        ]
        inserted = await insert_new(self.certificates, rows)
        moving = [p for p in plans if p.document.record_id in inserted]
        lost = await self._replace_heads(moving)
        for plan in moving:
            if plan.document.vin in lost:
                await self.certificates.delete_one({"_id": plan.document.record_id})
            else:
                self._stored[plan.document.record_id] = plan.receipt
        kept = [p for p in moving if p.document.vin not in lost]
        await self._count([approval_of(p.document) for p in kept], [approval_in(p.head_doc) for p in kept])
        return len(kept)

    async def _replace_heads(self, moving: list[_Next]) -> set[str]:
        """Move each VIN's head to its new link unless it moved since it was read; the VINs refused."""
        if not moving:
            return set()
        new = {p.document.vin: self._head_doc(p.receipt, list(p.head.revisions), p.document) for p in moving}
        result = await self.heads.bulk_write(
            [
                ReplaceOne({"_id": p.document.vin, "revision": p.head.revision}, new[p.document.vin])
                for p in moving
            ],
            ordered=False,
        )
        if result.matched_count == len(moving):
            return set()
        now_heads = {doc["_id"]: doc async for doc in self.heads.find({"_id": {"$in": list(new)}})}
        return {
            vin
            for vin, head in new.items()
            if (now_heads.get(vin) or {}).get("sha256") != head["sha256"]
            or (now_heads.get(vin) or {}).get("revision") != head["revision"]
        }

    async def store(self, document: Document, trace_id: str | None = None) -> ArchiveReceipt:
        """Store once; a redelivered document gets the receipt of the one already stored.

        Redelivered means the same document: the same bytes, or the same document
        sealed again (``content.same_document``). Another document for a record id
        stored already raises ``OtherCertificate``: the archive never answers
        "archived" for bytes other than the ones it keeps.
        """
        stored = self._stored.pop(document.record_id, None)
        if stored is not None and stored.sha256 == document.sha256:
            return stored
        head_doc = await self.heads.find_one({"_id": document.vin})
        head = head_of(head_doc)
        receipt = receipt_for(document, head, stored_time(now()))
        row = await self._row(document, receipt, trace_id)
        try:
            await self.certificates.insert_one({"_id": document.record_id, **row})
        except DuplicateKeyError:
            existing = await self.certificates.find_one({"_id": document.record_id})
            assert existing is not None
            receipt = receipt_of(existing)
            if receipt.sha256 != document.sha256 and not same_document(
                xml_of(existing), document.xml.encode("utf-8")
            ):
                raise OtherCertificate(document, receipt.sha256) from None
        # After the certificate: a crash in between leaves the head one behind, and the
        # redelivered message moves it on. A VIN's messages come one at a time.
        if advances(head, receipt):
            previous = list(head.revisions) if head else []
            new = self._head_doc(receipt, previous, document)
            await self.heads.replace_one({"_id": receipt.vin}, new, upsert=True)
            # After the head: a crash in between leaves the counts one behind (a count, not the evidence).
            await self._count([approval_of(document)], [approval_in(head_doc)])
        return receipt

    @staticmethod
    def _head_doc(receipt: ArchiveReceipt, previous: list[int], document: Document) -> MongoDoc:
        key, sha256 = approval_of(document)
        return {
            "_id": receipt.vin,
            "revision": receipt.revision,
            "sha256": receipt.sha256,
            "revisions": [*previous, receipt.revision],
            "version_number": document.version_number,
            "archived_at": receipt.archived_at,
            "approval_key": key,
            "approval_sha256": sha256,
        }

    async def _count(self, added: Sequence[Pair], removed: Sequence[Pair] = ()) -> None:
        """Move the per-approval counts of heads: +1 for each of ``added``, -1 for each of ``removed``.

        One bulk request for all the counts a batch moves, merged with those of
        batches archived at the same time (``shared.increments``): a batch of a
        hundred certificates of fourteen approvals cost fourteen requests, one
        after the other, on the archive's path before.
        """
        moves: dict[tuple[str, str], int] = {}
        for sign, pairs in ((1, added), (-1, removed)):
            for key, sha256 in pairs:
                if key and sha256:
                    moves[(key, sha256)] = moves.get((key, sha256), 0) + sign
        await self._counts.move(
            {f"{sha256}:{key}": by for (key, sha256), by in moves.items()},
            {f"{sha256}:{key}": {"approval_key": key, "approval_sha256": sha256} for key, sha256 in moves},
        )

    async def backfill(self, batch: int = 500) -> int:
        """Name the approval on heads kept before heads named it, from their certificate's evidence; how many.

        Read once at start (a scan of the heads for those without ``approval_key``),
        then by ``_id``; each head is written only if it is still at the revision
        read (a certificate archived meanwhile named it already), and counted then.
        """
        done = 0
        while True:
            found = self.heads.find({"approval_key": {"$exists": False}}, {"revision": 1}).limit(batch)
            heads = [(doc["_id"], int(doc["revision"])) async for doc in found]
            moved = 0
            for vin, revision in heads:
                moved += await self._backfill_one(vin, revision)
            done += moved
            if len(heads) < batch or not moved:
                return done

    async def _backfill_one(self, vin: str, revision: int) -> int:
        fields = {
            "version_number": 1,
            "archived_at": 1,
            "evidence.approval_key": 1,
            "evidence.approval_sha256": 1,
        }
        row = await self.certificates.find_one({"_id": f"{vin}:{revision}"}, fields)
        evidence = (row or {}).get("evidence") or {}
        named: MongoDoc = {
            "approval_key": evidence.get("approval_key"),
            "approval_sha256": evidence.get("approval_sha256"),
            "version_number": (row or {}).get("version_number"),
            "archived_at": (row or {}).get("archived_at"),
        }
        result = await self.heads.update_one({"_id": vin, "revision": revision}, {"$set": named})
        if result.modified_count:
            await self._count([(named["approval_key"], named["approval_sha256"])])
        return 1

    async def affected(
        self, approval_key: str, other_than: str | None, limit: int, after: str | None = None
    ) -> tuple[int, list[MongoDoc]]:
        """How many VINs' newest certificates were checked against ``approval_key`` with a SHA-256 other than
        ``other_than`` (all of them when None), and one page of them by VIN after ``after``.

        The count comes from ``archive_approval_counts`` (one small document per
        approval version); the page from the heads' (approval_key, _id) index.
        """
        total = 0
        async for row in self.counts.find({"approval_key": approval_key}):
            if row.get("approval_sha256") != other_than:
                total += max(0, int(row.get("count") or 0))
        query: MongoDoc = {"approval_key": approval_key}
        if other_than is not None:
            query["approval_sha256"] = {"$ne": other_than}
        if after is not None:
            query["_id"] = {"$gt": after}
        fields = {"revision": 1, "version_number": 1, "approval_sha256": 1, "archived_at": 1}
        if limit <= 0:  # the total alone: no page read (on FerretDB a page scans the heads)
            return total, []
        rows = [
            row async for row in self.heads.find(query, fields).sort("_id", 1).limit(min(limit, MAX_LISTED))
        ]
        return total, rows

    async def builds(self, record_ids: list[str]) -> dict[str, MongoDoc]:
        """The build records kept in the evidence of these certificates, by record id (one request)."""
        if not record_ids:
            return {}
        found = self.certificates.find({"_id": {"$in": record_ids[:MAX_LISTED]}}, {"evidence.build": 1})
        return {
            row["_id"]: row["evidence"]["build"]
            async for row in found
            if (row.get("evidence") or {}).get("build")
        }

    async def _row(self, document: Document, receipt: ArchiveReceipt, trace_id: str | None) -> MongoDoc:
        """What is kept of a certificate besides its ``_id``."""
        row = {
            **receipt.model_dump(mode="python"),
            "version_number": document.version_number,
            **packed(document.xml.encode("utf-8")),
        }
        if document.evidence is not None:
            # The approval first: a stored certificate never names a snapshot that is missing.
            row["evidence"] = await self._evidence_row(document.evidence, trace_id)
        return row

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
        return head_of(await self.heads.find_one({"_id": vin}))

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


def head_of(doc: MongoDoc | None) -> Head | None:
    if doc is None:
        return None
    revisions = tuple(int(r) for r in doc.get("revisions") or (doc["revision"],))
    return Head(int(doc["revision"]), doc["sha256"], revisions)


def approval_of(document: Document) -> Pair:
    """The approval key and master-data SHA-256 a certificate was checked against (None, None: no evidence)."""
    if document.evidence is None:
        return None, None
    return document.evidence.approval_key, document.evidence.approval_sha256


def approval_in(head: MongoDoc | None) -> Pair:
    if head is None:
        return None, None
    return head.get("approval_key"), head.get("approval_sha256")


def receipt_of(doc: dict[str, Any]) -> ArchiveReceipt:
    fields = ArchiveReceipt.model_fields
    return ArchiveReceipt.model_validate({k: v for k, v in doc.items() if k in fields})
