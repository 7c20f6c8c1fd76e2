"""Status's pure logic: fold one status event into the read-model document of its VIN.

Status events of one VIN come from five stages and may arrive late, twice or,
after a rebalance, out of order. The fold decides which event speaks for the
record (design, "A record's life"): a newer revision supersedes an older one at
every stage; within a revision the later pipeline stage has the last word; within
a stage the later event does (validation goes blocked → validated when an
approval arrives). Being pure, it is tested without a database, and the store
only has to make its read-fold-write atomic per VIN. The record is a typed,
frozen model; how it is kept in MongoDB is the store's business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Finding, Owner
from shared.contracts.approvals import RecordType
from shared.contracts.events import DELIVERY_STAGE, State, StatusEvent, stage_rank
from shared.contracts.findings import REVISION_REUSED

TIMELINE_LIMIT = 20  # enough for a record and its corrections; every read of the record carries it
OPEN_STATES = frozenset({State.BLOCKED, State.NEEDS_REVIEW, State.HELD})  # waiting for a person
NO_COUNTRY = "none"  # the destination of records without an intended country (readiness key, list filter)
DELIVERY_FINAL = frozenset({State.DELIVERED, State.DELIVERY_REJECTED})  # the authority decided


class StatusServiceError(Exception):
    """Base error of the status service."""


class TimelineEntry(BaseModel):
    """One status event of the record, as the timeline shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revision: int = Field(description="Build record revision")
    stage: str = Field(description="Stage that emitted the event")
    state: State = Field(description="The record's state after the event")
    time: dt.datetime = Field(description="When, UTC, milliseconds")
    service: str = Field(description="Service instance that emitted it")
    reason: str | None = Field(None, description="Why, for rejected and failed")
    trace_id: str | None = Field(None, description="OpenTelemetry trace id")
    findings: tuple[Finding, ...] = Field(
        (), description="The findings the event carried: the record page shows those since settled"
    )


class DeliveryStatus(BaseModel):
    """Where the delivery of the record's certificate stands (its own state stays archived)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revision: int = Field(description="Revision whose certificate it is")
    state: State = Field(
        description="delivery_queued, submitted, delivered, delivery_rejected, delivery_retrying"
    )
    destination: str | None = Field(None, description="The authority it goes to")
    reason: str | None = Field(None, description="The authority's reason, or the fault being retried")
    owner: Owner | None = Field(None, description="Who must act, for a rejection or a fault")
    findings: tuple[Finding, ...] = Field((), description="The rejection, as a finding")
    time: dt.datetime = Field(description="When, UTC, milliseconds")


class StatusRecord(BaseModel):
    """Where one VIN stands: the event that speaks for it, its open findings and its last events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vin: str = Field(description="Vehicle identification number")
    record_id: str = Field(description="VIN:revision of the event that speaks for the record")
    revision: int = Field(description="Current revision (0 when no event could read one)")
    state: State = Field(description="Current state")
    stage: str = Field(description="Stage of the event that speaks for the record")
    findings: tuple[Finding, ...] = Field((), description="Open findings")
    owner: Owner | None = Field(None, description="Team that must act next")
    vehicle_group: str | None = Field(None, description="Release group, once an event told it")
    build_id: str | None = Field(None, description="The MES build id, once an event told it")
    record_type: RecordType | None = Field(None, description="C, I or V, once an event told it")
    country: str | None = Field(None, description="Intended registration country, once an event told it")
    trace_id: str | None = Field(None, description="Trace id of the event that speaks for the record")
    updated_at: dt.datetime = Field(description="Time of that event, UTC, milliseconds")
    timeline: tuple[TimelineEntry, ...] = Field((), description=f"The last {TIMELINE_LIMIT} events")
    seq: int = Field(description="Writes so far: the guard against a concurrent writer")
    delivery: DeliveryStatus | None = Field(
        None, description="Delivery of the current certificate, once begun"
    )

    @property
    def waiting(self) -> bool:
        """Whether the record waits for a person (blocked, needs review, held)."""
        return self.state in OPEN_STATES

    def owners(self) -> list[str]:
        """The teams with open findings on the record."""
        return sorted({finding.owner.value for finding in self.findings})


def fold(current: StatusRecord | None, event: StatusEvent) -> StatusRecord | None:
    """The VIN's new record after ``event``, or None when the event changes nothing."""
    if event.stage == DELIVERY_STAGE:
        return _delivered(current, event)
    if current is None:
        return _record(None, event)
    if event.revision == 0:
        return None  # unreadable revision: says something only about a VIN never seen before
    if supersedes(current, event):
        return _record(current, event)
    return _completed(current, event)


def fold_batch(current: StatusRecord | None, events: Iterable[StatusEvent]) -> StatusRecord | None:
    """The VIN's record after all of ``events`` in their order, or None when none of them changes it.

    What each write of the store folds: the events of one VIN that came
    together become one write of its record, the same record as one write per
    event would leave (each event that changes it adds one to ``seq``).
    """
    record = current
    for event in events:
        record = fold(record, event) or record
    return None if record is current else record


def supersedes(current: StatusRecord, event: StatusEvent) -> bool:
    """Whether ``event`` speaks for the record instead of the event the record holds."""
    if event.revision != current.revision:
        return event.revision > current.revision
    if reused(event):
        # A build refused for reusing this revision with other content speaks over any stage: its
        # revision may be archived already, with the first content. Only a newer revision settles it.
        return not _same_word(current, event)
    if reused(current):
        return False
    rank, current_rank = stage_rank(event.stage), stage_rank(current.stage)
    if rank != current_rank:
        return rank > current_rank
    if _same_word(current, event):
        return False  # a redelivery, or a stage repeating itself: nothing new
    return event_time(event) > current.updated_at


def reused(said: StatusRecord | StatusEvent) -> bool:
    """Whether the record or event holds validation's refusal of a revision received with other content."""
    return any(finding.code == REVISION_REUSED for finding in said.findings)


def _same_word(current: StatusRecord, event: StatusEvent) -> bool:
    """Same state and same findings: a repeat.

    The findings count because validation re-checks a blocked record when an
    approval arrives: still blocked, for another reason, is news for the
    worklist of another team.
    """
    return current.state == event.state and current.findings == event.findings


def event_time(event: StatusEvent) -> dt.datetime:
    """The event's time as MongoDB keeps it (UTC, milliseconds), so a stored time compares equal."""
    time = event.time.astimezone(dt.UTC)
    return time.replace(microsecond=time.microsecond // 1000 * 1000)


def _record(current: StatusRecord | None, event: StatusEvent) -> StatusRecord:
    return StatusRecord(
        vin=event.vin,
        record_id=event.record_id,
        revision=event.revision,
        state=event.state,
        stage=event.stage,
        findings=event.findings,
        owner=event.owner,
        # Render, signing and archive do not know the group: keep what intake and validation said.
        vehicle_group=event.vehicle_group or (current.vehicle_group if current else None),
        build_id=event.build_id or (current.build_id if current else None),
        record_type=event.record_type or (current.record_type if current else None),
        country=event.country or (current.country if current else None),
        trace_id=event.trace_id,
        updated_at=event_time(event),
        timeline=(*(current.timeline if current else ()), _entry(event))[-TIMELINE_LIMIT:],
        seq=(current.seq if current else 0) + 1,
        # A delivery of this revision's certificate stays; a new revision has none yet.
        delivery=current.delivery
        if current and current.delivery and current.delivery.revision == event.revision
        else None,
    )


def _delivered(current: StatusRecord | None, event: StatusEvent) -> StatusRecord | None:
    """A delivery event speaks for the delivery of the current revision's certificate, the newest one winning.

    The record's own state (archived) stays: the certificate is issued; where
    it stands with the authority is beside it. A delivery of an older
    certificate, or of one not yet seen archived, changes nothing.
    """
    if current is None or event.revision != current.revision:
        return None
    if current.state is not State.ARCHIVED and not reused(current):  # a refused resend: the kept one goes on
        return None
    before, time = current.delivery, event_time(event)
    if before is not None:
        if before.state in DELIVERY_FINAL and event.state not in DELIVERY_FINAL:
            return None  # a late word of an attempt: the authority's decision stands
        if time < before.time or (before.state == event.state and before.reason == event.reason):
            return None
    delivery = DeliveryStatus(
        revision=event.revision,
        state=event.state,
        destination=event.destination,
        reason=event.reason,
        owner=event.owner,
        findings=event.findings,
        time=time,
    )
    return current.model_copy(
        update={
            "delivery": delivery,
            "timeline": (*current.timeline, _entry(event))[-TIMELINE_LIMIT:],
            "seq": current.seq + 1,
        }
    )


def _completed(current: StatusRecord, event: StatusEvent) -> StatusRecord | None:
    """A late event of the same revision may still fill in what the record lacks (group, build id, type, country).

    Without this, the group of a record whose validation event arrived after
    its render event would stay unknown, and readiness per group would depend
    on the order of delivery.
    """
    if event.revision != current.revision:
        return None
    filled = {
        name: value
        for name, value in (
            ("vehicle_group", event.vehicle_group),
            ("build_id", event.build_id),
            ("record_type", event.record_type),
            ("country", event.country),
        )
        if value and not getattr(current, name)
    }
    if not filled:
        return None
    return current.model_copy(update={**filled, "seq": current.seq + 1})


def _entry(event: StatusEvent) -> TimelineEntry:
    return TimelineEntry(
        revision=event.revision,
        stage=event.stage,
        state=event.state,
        time=event_time(event),
        service=event.service,
        reason=event.reason,
        trace_id=event.trace_id,
        findings=event.findings,
    )
