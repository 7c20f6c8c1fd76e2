"""Delivery's decisions: where a certificate goes, and what an authority's answer makes of its delivery.

Pure: the subscriber and the sender read the ledger, call these, and write what
they return. One delivery is one (VIN, IviVersionNumber, destination): its
ledger entry goes

    queued ─send─► sending ─► delivered            (accepted)
                          ├─► submitted ─poll─► delivered | rejected
                          ├─► rejected             (the authority refused the data)
                          └─► retrying ─send─► …   (timeout, 5xx, dropped connection, TLS)

A technical fault is retried with growing waits and the same document, so the
same IviVersionNumber (guidelines 1.7: a resend after a failed delivery keeps
its number). A rejection waits for a corrected revision, which is a new
certificate (new reference id, version number + 1) and so a new delivery.
A send cut off by a crash is in doubt: it is sent again with the same
IviReferenceId, which the authority recognises, so it keeps one copy.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import State
from shared.xml import IVI_NS, XmlInputError, parse_bytes

EVERY_OTHER = "*"
RAW_KEPT = 4_000  # characters of an authority's raw reply kept with each receipt


def raw_text(body: bytes) -> str:
    """The start of an authority's reply as text, for the receipt (kept whatever it holds)."""
    return body[: RAW_KEPT * 2].decode("utf-8", "replace")[:RAW_KEPT]


RECEIPTS_KEPT = 50  # receipts kept per delivery (the first and the newest)


class Step(StrEnum):
    """Where one delivery stands in the ledger."""

    QUEUED = "queued"
    SENDING = "sending"  # a send in flight (or cut off by a crash: in doubt)
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRYING = "retrying"
    UNROUTED = "unrouted"


FINAL = frozenset({Step.DELIVERED, Step.REJECTED, Step.UNROUTED})
STATE_OF = {
    Step.QUEUED: State.DELIVERY_QUEUED,
    Step.SENDING: State.DELIVERY_QUEUED,
    Step.SUBMITTED: State.SUBMITTED,
    Step.DELIVERED: State.DELIVERED,
    Step.REJECTED: State.DELIVERY_REJECTED,
    Step.RETRYING: State.DELIVERY_RETRYING,
    Step.UNROUTED: State.DELIVERY_REJECTED,
}


class Answer(StrEnum):
    """What an authority's reply (or its absence) means."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"  # taken; its outcome is polled
    PROCESSING = "processing"  # a poll: not decided yet
    DUPLICATE = "duplicate"  # it holds this IviReferenceId already
    REJECTED = "rejected"  # refused for the data
    TRANSIENT = "transient"  # no usable answer: timeout, 5xx, dropped connection, TLS, token refused


@dataclass(frozen=True)
class Reply:
    """An authority's answer to one send or poll, as the connector read it."""

    answer: Answer
    reason: str = ""
    code: str | None = None
    field: str | None = None
    http_status: int | None = None
    receipt_id: str | None = None
    submission_id: str | None = None
    raw: str = ""
    owner: Owner | None = None  # who must act on a technical fault (integration for credentials)


@dataclass(frozen=True)
class Delivery:
    """One ledger entry: one certificate to one destination."""

    id: str
    vin: str
    revision: int
    record_id: str
    version_number: int
    reference_id: str
    sha256: str
    destination: str
    step: Step
    attempts: int = 0
    next_at: dt.datetime | None = None
    submission_id: str | None = None
    receipt_id: str | None = None
    reason: str | None = None
    owner: Owner | None = None
    code: str | None = None
    field_path: str | None = None
    claim: str | None = None
    claims: int = 0  # sends and polls claimed so far: a claim is the next number's, taken once (ledger.claim)
    receipts: tuple[dict[str, Any], ...] = field(default=())
    corrects: str | None = None  # IviReferenceId of the certificate this one corrects (version number > 1)

    @property
    def final(self) -> bool:
        return self.step in FINAL

    @property
    def state(self) -> State:
        return STATE_OF[self.step]

    def finding(self) -> Finding | None:
        """The finding a person acts on, for a rejected (or unroutable) delivery."""
        if self.step not in (Step.REJECTED, Step.UNROUTED) or self.owner is None:
            return None
        return Finding(
            code=self.code or "DELIVERY_REJECTED",
            path=self.field_path or "InitialVehicleInformation",
            message=(self.reason or "rejected")[:500],
            severity=Severity.ERROR,
            owner=self.owner,
        )


def delivery_id(vin: str, version_number: int, destination: str) -> str:
    return f"{vin}:{version_number}:{destination}"


def corrected(version_number: int, earlier: Sequence[Delivery]) -> Delivery | None:
    """The delivery of the certificate a version ``version_number`` corrects: the VIN's newest lower version.

    A correction is a new certificate (new IviReferenceId, IviVersionNumber + 1;
    guidelines 1.7, 1.12); it goes where the original went, naming the original's
    reference id, so the authority replaces the certificate it holds.
    """
    before = [d for d in earlier if d.version_number < version_number and d.destination != "-"]
    return max(before, key=lambda d: d.version_number, default=None)


def route(country: str | None, routes: dict[str, tuple[str, ...]]) -> str | None:
    """The destination of a certificate with this IntendedCountryRegistration; None when none takes it.

    ``routes`` maps destination name → its countries; ``*`` takes every country
    no destination names (and a certificate without an intended country).
    """
    for name, countries in routes.items():
        if country is not None and country in countries:
            return name
    for name, countries in routes.items():
        if EVERY_OTHER in countries:
            return name
    return None


# Fields a production team sets per vehicle (domain.md, "Per type, per vehicle"); the rest of the
# data comes from the approval, kept by the type-approval team.
PRODUCTION_FIELDS = (
    "VehicleIdentificationNumber",
    "Colour",
    "ActualMass",
    "DateOfManufacture",
    "TyreFittedProductionIndicator",
    "IntendedCountryRegistration",
    "SignatureDate",
)
# Codes about the document's form, seal or transport rather than its data.
INTEGRATION_CODES = ("SCHEMA", "XSD", "SIGNATURE", "SEAL", "ENVELOPE", "XML", "AUTH", "CERTIFICATE", "FORMAT")


def owner_of_rejection(code: str | None, field_path: str | None) -> Owner:
    """Who must act on an authority's rejection: production for a per-vehicle value, integration for the
    document's form or seal, type-approval for the approval's data."""
    upper = (code or "").upper()
    if any(word in upper for word in INTEGRATION_CODES):
        return Owner.INTEGRATION
    if not field_path:
        return Owner.INTEGRATION  # nothing names the data: someone must read the raw reply
    if any(name in field_path for name in PRODUCTION_FIELDS):
        return Owner.PRODUCTION
    return Owner.TYPE_APPROVAL


def backoff_s(attempts: int, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Wait before attempt ``attempts + 1``: doubling from ``initial_s`` to ``max_s``, with ±20% jitter."""
    base = min(max_s, initial_s * 2 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * (rng or random).random())


@dataclass(frozen=True)
class Timing:
    retry_initial_s: float
    retry_max_s: float
    poll_s: float


def after(delivery: Delivery, reply: Reply, now: dt.datetime, timing: Timing) -> Delivery:
    """The delivery after the authority's ``reply`` to a send (or a poll, when it was submitted)."""
    receipt = receipt_of(delivery, reply, now)
    kept = (*delivery.receipts, receipt)
    if len(kept) > RECEIPTS_KEPT:
        kept = (kept[0], *kept[-(RECEIPTS_KEPT - 1) :])
    base = replace(delivery, receipts=kept, claim=None)
    answer = reply.answer
    if answer is Answer.DUPLICATE and reply.submission_id and delivery.step is not Step.SUBMITTED:
        answer = Answer.SUBMITTED  # it holds a submission of ours already: follow that one
    if answer in (Answer.ACCEPTED, Answer.DUPLICATE):
        reason = (
            None if answer is Answer.ACCEPTED else "the authority already held it (sent again after a cut)"
        )
        return replace(
            base,
            step=Step.DELIVERED,
            reason=reason,
            owner=None,
            receipt_id=reply.receipt_id or delivery.receipt_id,
            next_at=None,
        )
    if answer in (Answer.SUBMITTED, Answer.PROCESSING):
        return replace(
            base,
            step=Step.SUBMITTED,
            submission_id=reply.submission_id or delivery.submission_id,
            reason=None,
            owner=None,
            next_at=now + dt.timedelta(seconds=timing.poll_s),
        )
    if answer is Answer.REJECTED:
        return replace(
            base,
            step=Step.REJECTED,
            reason=reply.reason or "rejected without a reason",
            code=reply.code,
            field_path=reply.field,
            owner=owner_of_rejection(reply.code, reply.field),
            next_at=None,
        )
    wait = backoff_s(delivery.attempts, timing.retry_initial_s, timing.retry_max_s)
    if delivery.step is Step.SUBMITTED:
        # A poll that got no answer: the submission stands; ask again later.
        return replace(base, next_at=now + dt.timedelta(seconds=wait))
    return replace(
        base,
        step=Step.RETRYING,
        reason=reply.reason or "no answer",
        owner=reply.owner or Owner.INTEGRATION,
        next_at=now + dt.timedelta(seconds=wait),
    )


def receipt_of(delivery: Delivery, reply: Reply, now: dt.datetime) -> dict[str, Any]:
    return {
        "at": now,
        "attempt": delivery.attempts,
        "answer": reply.answer.value,
        "http_status": reply.http_status,
        "reason": reply.reason[:500] or None,
        "code": reply.code,
        "field": reply.field,
        "receipt_id": reply.receipt_id,
        "submission_id": reply.submission_id,
        "raw": reply.raw[:RAW_KEPT],
    }


def no_route(delivery: Delivery, country: str | None) -> Delivery:
    what = f"intended country {country}" if country else "a certificate without an intended country"
    return replace(
        delivery,
        step=Step.UNROUTED,
        code="DELIVERY_NO_ROUTE",
        field_path="Header/IntendedCountryRegistration",
        reason=f"no destination takes {what}: add it to a destination's countries in COC_DELIVERY_DESTINATIONS",
        owner=Owner.INTEGRATION,
    )


@dataclass(frozen=True)
class Header:
    """What delivery reads from a signed certificate (never re-formatting it)."""

    vin: str
    reference_id: str
    version_number: int
    country: str | None


def header_of(signed_xml: bytes) -> Header:
    """The certificate's VIN, IviReferenceId, IviVersionNumber and IntendedCountryRegistration.

    Raises ``XmlInputError`` when the bytes are not an IVI document with them.
    """
    root = parse_bytes(signed_xml)

    def text(path: str) -> str | None:
        found = root.find(path, {"i": IVI_NS})
        return (found.text or "").strip() or None if found is not None else None

    vin = text(".//i:VehicleIdentificationNumber")
    reference = text("i:Header/i:IviReferenceId")
    number = text("i:Header/i:IviVersionNumber")
    if not vin or not reference or not number or not number.isdigit():
        raise XmlInputError("not an IVI document with a VIN, IviReferenceId and IviVersionNumber")
    return Header(vin, reference, int(number), text("i:Header/i:IntendedCountryRegistration"))
