"""Messages between the stages, and the status event ops dashboards read (coc.status.v1)."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidatorFunctionWrapHandler, field_validator

from shared.contracts.approvals import Approval, RecordType, master_data_sha256
from shared.contracts.base import Contract, PersonName, Text
from shared.contracts.builds import MAX_REVISION, BuildRecord
from shared.contracts.findings import Finding, Owner


class State(StrEnum):
    """Where a record stands (design, "A record's life")."""

    RECEIVED = "received"
    VALIDATED = "validated"
    RENDERED = "rendered"
    SIGNED = "signed"
    ARCHIVED = "archived"
    REJECTED = "rejected"  # the input broke its contract
    BLOCKED = "blocked"  # an error finding; waits for a correction or an approval
    NEEDS_REVIEW = "needs_review"  # a warning, or a group set to review; waits for a reviewer
    HELD = "held"  # its vehicle group is not yet released
    FAILED = "failed"  # a stage gave up; the message sits in a DLQ
    # Delivery of an archived certificate to its authority: a state of the delivery, kept
    # beside the record's own state (which stays archived) by the read model.
    DELIVERY_QUEUED = "delivery_queued"  # waiting for its turn, or for the authority to answer again
    SUBMITTED = "submitted"  # the authority took it and is checking it
    DELIVERED = "delivered"  # the authority accepted it
    DELIVERY_REJECTED = "delivery_rejected"  # refused for its data (or not routable): a person must act
    DELIVERY_RETRYING = "delivery_retrying"  # a technical fault (timeout, 5xx, TLS); sent again later


DELIVERY_STATES = frozenset(
    {
        State.DELIVERY_QUEUED,
        State.SUBMITTED,
        State.DELIVERED,
        State.DELIVERY_REJECTED,
        State.DELIVERY_RETRYING,
    }
)


# The pipeline's stages in order: within one revision the later stage has the last word.
STAGE_ORDER = {"intake": 0, "validation": 1, "render": 2, "signing": 3, "archive": 4}
DELIVERY_STAGE = "delivery"  # after the archive; its events speak for the delivery, not the record
UNKNOWN_STAGE = -1  # cannot be placed in the pipeline: never overrides a known stage of its revision


def stage_rank(stage: str) -> int:
    """The place of ``stage`` in the pipeline (``UNKNOWN_STAGE`` for any other name)."""
    return STAGE_ORDER.get(stage, UNKNOWN_STAGE)


class AcceptedRecord(Contract):
    """A build record that kept its contract, with its identity (coc.records.accepted.v1)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    record_id: str = Field(description="VIN:revision")
    received_at: AwareDatetime = Field(description="When intake accepted the record")
    build: BuildRecord = Field(description="The normalised build record (released_at always set)")


class Settlement(Contract):
    """A reviewer's acceptance of a record past its warnings or its group's policy."""

    reviewer: PersonName = Field(min_length=1, max_length=128, description="Who accepted")
    comment: Text = Field("", max_length=2000, description="Why")
    at: AwareDatetime = Field(description="When validation carried the decision out")


class Release(Contract):
    """Why a record was released for signing: the release evidence validation hands on."""

    policy: str = Field(max_length=16, description="Release policy of its vehicle group: auto, review, hold")
    findings: tuple[Finding, ...] = Field(
        (), description="Warnings (and the group's review or hold) the release settled"
    )
    settled_by: Settlement | None = Field(None, description="The reviewer's acceptance, when one was needed")
    decided_at: AwareDatetime = Field(description="When validation released it")


class SharedSnapshots:
    """The approval snapshots of many messages, each validated once and kept as one object.

    Every validated record carries the approval it was checked against: render
    parsed 500 copies of the same few approvals per batch, each 0.3 ms of
    validation (most of it the certificate's bound check) and 44 KB as Python
    objects. An input equal to one already validated gives the approval that
    one gave (validation is deterministic), without validating it again and
    without a second copy. Contracts are frozen, so sharing one is safe. The
    last ``limit`` approval keys are kept.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._seen: dict[str, tuple[dict[str, Any], Approval]] = {}

    def of(self, data: Any, validate: ValidatorFunctionWrapHandler) -> Approval:
        key = _key_of(data)
        seen = self._seen.get(key) if key else None
        if seen is not None and seen[0] == data:
            return seen[1]
        approval: Approval = validate(data)
        if isinstance(data, dict) and key:
            while len(self._seen) >= self.limit:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = (data, approval)
        return approval


def _key_of(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    parts = [data.get(name) for name in ("number", "type", "variant", "version")]
    return "|".join(parts) if all(isinstance(part, str) for part in parts) else None  # type: ignore[arg-type]


SNAPSHOTS = SharedSnapshots()


class ValidatedRecord(Contract):
    """A record that passed the rules, with the approval it was checked against."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    record_id: str = Field(description="VIN:revision")
    build: BuildRecord = Field(description="The build record")
    approval: Approval = Field(description="Snapshot of the approval the record was checked against")
    reviewed_by: str | None = Field(None, description="Reviewer who released it, if one did")
    release: Release | None = Field(
        None, description="Why it was released: policy, settled findings, reviewer"
    )

    @field_validator("approval", mode="wrap")
    @classmethod
    def _one_copy(cls, data: Any, validate: ValidatorFunctionWrapHandler) -> Approval:
        return SNAPSHOTS.of(data, validate)


# The approval snapshot travels with a certificate packed (zlib, base64); a certificate whose
# document and packed snapshot together pass this size leaves the snapshot behind (named by its
# hash), so the message stays within the broker's 1 MB limit.
EVIDENCE_TRAVEL_MAX = 850_000


@dataclass(frozen=True)
class PackedApproval:
    """An approval snapshot as it travels: the SHA-256 of its master data and its JSON packed."""

    sha256: str
    packed: str

    @classmethod
    def of(cls, approval: Approval) -> PackedApproval:
        packed = base64.b64encode(zlib.compress(approval.model_dump_json().encode(), 6)).decode()
        return cls(master_data_sha256(approval), packed)


class ApprovalPacks:
    """Each approval packed once: the records of a version share one snapshot (about 0.5 ms saved a record)."""

    def __init__(self, limit: int = 1_000) -> None:
        self.limit = limit
        self._packs: dict[str, tuple[Approval, PackedApproval]] = {}

    def of(self, approval: Approval) -> PackedApproval:
        known = self._packs.get(approval.key)
        if known is not None and (known[0] is approval or known[0] == approval):
            return known[1]
        if len(self._packs) >= self.limit:
            self._packs.clear()
        pack = PackedApproval.of(approval)
        self._packs[approval.key] = (approval, pack)
        return pack


class Evidence(Contract):
    """What a certificate was made from, carried from render to the archive, which keeps it."""

    build: BuildRecord = Field(description="The build record the certificate was rendered from")
    approval_key: str = Field(max_length=400, description="Key of the approval it was checked against")
    approval_sha256: str = Field(max_length=64, description="SHA-256 of that approval's master data")
    approval_packed: str | None = Field(
        None,
        description="The approval snapshot as JSON, zlib-compressed, base64; None when too large to travel",
    )
    release: Release | None = Field(None, description="Why it was released")

    @classmethod
    def of(
        cls,
        build: BuildRecord,
        approval: Approval,
        release: Release | None,
        document_bytes: int,
        pack: PackedApproval | None = None,
    ) -> Evidence:
        """The evidence of a certificate of ``document_bytes``, its approval packed when it fits."""
        pack = pack or PackedApproval.of(approval)
        return cls(
            build=build,
            approval_key=approval.key,
            approval_sha256=pack.sha256,
            approval_packed=pack.packed if document_bytes + len(pack.packed) <= EVIDENCE_TRAVEL_MAX else None,
            release=release,
        )

    def approval(self) -> Approval | None:
        """The approval snapshot it carries (None when it was left behind)."""
        if self.approval_packed is None:
            return None
        return Approval.model_validate_json(zlib.decompress(base64.b64decode(self.approval_packed)))


class Document(Contract):
    """An IVI 2.0 document between render, signing and archive."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    record_id: str = Field(description="VIN:revision")
    vin: str = Field(description="Vehicle identification number")
    revision: int = Field(ge=1, le=MAX_REVISION, description="Build record revision")
    version_number: int = Field(ge=1, description="IviVersionNumber: certificates issued for this VIN")
    xml: str = Field(description="The document, UTF-8 text exactly as produced")
    sha256: str = Field(description="SHA-256 of the document bytes, hex")
    signer_fingerprint: str | None = Field(None, description="SHA-256 of the seal certificate (signed only)")
    evidence: Evidence | None = Field(None, description="What it was made from, for the release evidence")
    seal_holder: str | None = Field(
        None,
        max_length=150,
        description="The approval holder whose seal seals it (shared.contracts.seals.holder_of), set by render",
    )


class ArchiveReceipt(Contract):
    """A certificate stored once per VIN and revision (coc.documents.archived.v1)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    record_id: str = Field(description="VIN:revision")
    vin: str = Field(description="Vehicle identification number")
    revision: int = Field(ge=1, le=MAX_REVISION, description="Build record revision")
    sha256: str = Field(description="SHA-256 of the signed document")
    previous_sha256: str | None = Field(None, description="SHA-256 of the VIN's certificate stored before")
    signer_fingerprint: str = Field(description="SHA-256 of the seal certificate")
    archived_at: AwareDatetime = Field(description="When the certificate was stored")


class Decision(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"


class Review(Contract):
    """A reviewer's decision on a record waiting for review or held (coc.reviews.v1)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    vin: str = Field(min_length=1, max_length=32, description="VIN of the record")
    revision: int = Field(ge=1, le=MAX_REVISION, description="Revision decided on")
    decision: Decision = Field(description="accept releases the record; reject blocks it")
    reviewer: PersonName = Field(min_length=1, max_length=128, description="Who decided")
    comment: Text = Field("", max_length=2000, description="Why")


class StatusEvent(Contract):
    """One transition of one record: the contract ops dashboards read (coc.status.v1)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    vin: str = Field(description="Vehicle identification number (the key)")
    record_id: str = Field(description="VIN:revision")
    revision: int = Field(ge=0, le=MAX_REVISION, description="Build record revision (0 when unreadable)")
    build_id: str | None = Field(None, description="The MES build id, for tracing")
    vehicle_group: str | None = Field(None, description="Release group of the vehicle")
    stage: str = Field(description="Service stage that emitted it: intake, validation, render, ...")
    state: State = Field(description="The record's state after this event")
    findings: tuple[Finding, ...] = Field((), description="Open findings (blocked, needs_review)")
    owner: Owner | None = Field(None, description="Team that must act next, if any")
    reason: str | None = Field(None, description="Why, for rejected and failed")
    time: AwareDatetime = Field(description="When it happened")
    service: str = Field(description="Service instance that emitted it")
    trace_id: str | None = Field(None, description="OpenTelemetry trace id of the record")
    destination: str | None = Field(None, description="Delivery events: the destination (an authority)")
    record_type: RecordType | None = Field(
        None, description="C complete, I incomplete, V completed vehicle (the approval's StageOfCompletion)"
    )
    country: str | None = Field(
        None, max_length=8, description="Vienna code of the intended registration country (the destination)"
    )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DeadLetter(Contract):
    """A message a stage could not use, kept with the reason (<topic>.dlq)."""

    schema_version: Literal[1] = Field(1, description="Version of this contract")
    source_topic: str = Field(description="Topic the message came from")
    partition: int | None = Field(None, description="Partition it came from")
    offset: int | None = Field(None, description="Offset it had there")
    key: str | None = Field(None, description="Its key, as text")
    value: str = Field(
        description="The start of its value, as text for reading (undecodable bytes replaced); "
        "value_b64 holds the bytes themselves"
    )
    value_b64: str | None = Field(
        None, description="Its value exactly, base64; only the first value_kept bytes when value_cut"
    )
    value_size: int | None = Field(None, ge=0, description="Bytes of the whole value")
    value_kept: int | None = Field(None, ge=0, description="Bytes of the value kept in value_b64")
    value_cut: bool = Field(False, description="Whether value_b64 holds only the start of the value")
    value_sha256: str | None = Field(None, description="SHA-256 of the whole value, hex")
    reason: str = Field(description="Why it could not be used, naming the field")
    service: str = Field(description="Service that gave up on it")
    time: AwareDatetime = Field(description="When")
