"""The fold of status events into a VIN's read model: which event speaks for the record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.status.fold import TIMELINE_LIMIT, StatusRecord, fold, fold_batch
from shared.contracts import Owner
from shared.contracts.events import State, StatusEvent
from tests.findings import APPROVAL, MASS

pytestmark = pytest.mark.unit

VIN = "WVWZZZ1JZXW000001"
T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


def event(stage: str, state: State, *, revision: int = 1, minutes: float = 0, **extra: Any) -> StatusEvent:
    fields: dict[str, Any] = {
        "vin": VIN,
        "record_id": f"{VIN}:{revision}",
        "revision": revision,
        "stage": stage,
        "state": state,
        "time": T0 + dt.timedelta(minutes=minutes),
        "service": f"{stage}@host:1",
        **extra,
    }
    if stage in ("intake", "validation") and revision > 0:
        fields.setdefault("vehicle_group", "CHR")
        fields.setdefault("build_id", f"B{revision}")
    return StatusEvent(**fields)


def fold_all(*events: StatusEvent) -> StatusRecord | None:
    doc = None
    for each in events:
        doc = fold(doc, each) or doc
    return doc


def test_first_event_of_a_vin_creates_its_document() -> None:
    doc = fold(None, event("intake", State.RECEIVED))
    assert doc is not None
    assert (doc.vin, doc.record_id, doc.revision, doc.state, doc.stage) == (
        VIN,
        f"{VIN}:1",
        1,
        "received",
        "intake",
    )
    assert (doc.vehicle_group, doc.build_id, doc.seq) == ("CHR", "B1", 1)
    assert doc.updated_at == T0
    assert [(e.stage, e.state) for e in doc.timeline] == [("intake", "received")]


def test_later_stage_of_the_same_revision_moves_the_record_on_and_counts_the_write() -> None:
    doc = fold_all(event("intake", State.RECEIVED), event("validation", State.VALIDATED, minutes=1))
    assert doc is not None
    assert (doc.state, doc.stage, doc.seq) == ("validated", "validation", 2)
    assert [e.state for e in doc.timeline] == ["received", "validated"]


def test_newer_revision_wins_even_from_an_earlier_stage() -> None:
    archived = fold_all(event("intake", State.RECEIVED), event("archive", State.ARCHIVED, minutes=5))
    assert archived is not None
    doc = fold(archived, event("intake", State.RECEIVED, revision=2, minutes=6))
    assert doc is not None
    assert (doc.revision, doc.record_id, doc.state, doc.stage) == (
        2,
        f"{VIN}:2",
        "received",
        "intake",
    )


def test_newer_revision_wins_even_when_its_clock_is_behind() -> None:
    current = fold(None, event("validation", State.BLOCKED, minutes=10, findings=(MASS,)))
    assert current is not None
    doc = fold(current, event("intake", State.RECEIVED, revision=2, minutes=9))
    assert doc is not None and doc.revision == 2


def test_older_revision_never_overwrites_a_newer_one() -> None:
    current = fold(None, event("intake", State.RECEIVED, revision=2))
    assert current is not None
    assert fold(current, event("archive", State.ARCHIVED, revision=1, minutes=30)) is None


def test_late_event_of_an_earlier_stage_changes_nothing() -> None:
    current = fold_all(
        event("validation", State.VALIDATED, minutes=1), event("render", State.RENDERED, minutes=2)
    )
    assert current is not None
    assert fold(current, event("intake", State.RECEIVED, minutes=3)) is None


def test_repeated_event_changes_nothing() -> None:
    blocked = event("validation", State.BLOCKED, findings=(MASS,), owner=Owner.PRODUCTION)
    current = fold(None, blocked)
    assert current is not None
    assert fold(current, blocked) is None
    again_later = blocked.model_copy(update={"time": T0 + dt.timedelta(minutes=5)})
    assert fold(current, again_later) is None


def test_same_stage_newer_event_wins_when_an_approval_releases_a_blocked_record() -> None:
    current = fold(None, event("validation", State.BLOCKED, findings=(APPROVAL,), owner=Owner.TYPE_APPROVAL))
    assert current is not None
    doc = fold(current, event("validation", State.VALIDATED, minutes=1))
    assert doc is not None
    assert (doc.state, doc.findings, doc.owner) == ("validated", (), None)


def test_same_stage_older_event_changes_nothing() -> None:
    current = fold(None, event("validation", State.VALIDATED, minutes=1))
    assert current is not None
    assert fold(current, event("validation", State.NEEDS_REVIEW, findings=(MASS,))) is None


def test_still_blocked_for_another_reason_replaces_the_findings() -> None:
    current = fold(None, event("validation", State.BLOCKED, findings=(APPROVAL,), owner=Owner.TYPE_APPROVAL))
    assert current is not None
    doc = fold(
        current, event("validation", State.BLOCKED, minutes=1, findings=(MASS,), owner=Owner.PRODUCTION)
    )
    assert doc is not None
    assert ([f.code for f in doc.findings], doc.owner) == (["MASS_ABOVE_MAX"], "production")


def test_rejected_event_without_a_revision_creates_a_document_for_an_unknown_vin() -> None:
    doc = fold(None, event("intake", State.REJECTED, revision=0, reason="revision: not an integer"))
    assert doc is not None
    assert (doc.revision, doc.state, doc.vehicle_group) == (0, "rejected", None)
    assert doc.timeline[0].reason == "revision: not an integer"


def test_rejected_event_without_a_revision_never_changes_a_known_vin() -> None:
    current = fold(None, event("intake", State.RECEIVED))
    assert current is not None
    assert fold(current, event("intake", State.REJECTED, revision=0, minutes=1, reason="bad")) is None


def test_unreadable_revision_never_changes_a_document_made_by_another_one() -> None:
    current = fold(None, event("intake", State.REJECTED, revision=0, reason="vin: missing"))
    assert current is not None
    assert fold(current, event("render", State.FAILED, revision=0, minutes=1, reason="xml: bad")) is None


def test_revision_after_a_rejected_one_replaces_it() -> None:
    current = fold(None, event("intake", State.REJECTED, revision=0, reason="bad"))
    assert current is not None
    doc = fold(current, event("intake", State.RECEIVED, minutes=1))
    assert doc is not None and (doc.revision, doc.state) == (1, "received")


def test_group_and_build_id_are_kept_when_a_later_stage_does_not_know_them() -> None:
    doc = fold_all(event("validation", State.VALIDATED), event("render", State.RENDERED, minutes=1))
    assert doc is not None
    assert (doc.state, doc.vehicle_group, doc.build_id) == ("rendered", "CHR", "B1")


def test_late_event_fills_in_a_group_the_document_lacks_without_moving_the_record() -> None:
    current = fold(None, event("render", State.RENDERED, minutes=2))
    assert current is not None and current.vehicle_group is None
    doc = fold(current, event("validation", State.VALIDATED, minutes=1))
    assert doc is not None
    assert (doc.state, doc.stage, doc.vehicle_group, doc.build_id) == (
        "rendered",
        "render",
        "CHR",
        "B1",
    )
    assert (doc.seq, len(doc.timeline)) == (2, 1)


def test_timeline_keeps_only_the_last_events() -> None:
    states = [State.BLOCKED, State.NEEDS_REVIEW]
    events = [
        event("validation", states[i % 2], minutes=i, findings=(MASS,)) for i in range(TIMELINE_LIMIT + 7)
    ]
    doc = fold_all(*events)
    assert doc is not None
    assert len(doc.timeline) == TIMELINE_LIMIT
    assert doc.timeline[-1].time == events[-1].time
    assert doc.timeline[0].time == events[7].time


def test_time_is_kept_in_utc_milliseconds_as_mongodb_stores_it() -> None:
    local = dt.datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    doc = fold(None, event("intake", State.RECEIVED).model_copy(update={"time": local}))
    assert doc is not None
    assert doc.updated_at == dt.datetime(2026, 11, 26, 8, 0, 0, 123000, tzinfo=dt.UTC)
    assert doc.updated_at.utcoffset() == dt.timedelta(0)


def test_each_timeline_entry_keeps_the_findings_its_event_carried() -> None:
    doc = fold_all(
        event("validation", State.BLOCKED, findings=(MASS,), owner=Owner.PRODUCTION),
        event("validation", State.VALIDATED, revision=2, minutes=1),
    )
    assert doc is not None and doc.findings == ()
    assert [e.findings for e in doc.timeline] == [(MASS,), ()]


def archived(revision: int = 1) -> list[StatusEvent]:
    return [
        event("intake", State.RECEIVED, revision=revision),
        event("archive", State.ARCHIVED, revision=revision, minutes=1),
    ]


def test_delivery_is_kept_beside_the_archived_record_and_the_authoritys_decision_stands() -> None:
    doc = fold_all(
        *archived(),
        event("delivery", State.DELIVERY_QUEUED, minutes=2, destination="nap-lt"),
        event("delivery", State.DELIVERY_RETRYING, minutes=3, destination="nap-lt", reason="503"),
        event("delivery", State.DELIVERED, minutes=4, destination="nap-lt"),
        # A late word of an earlier attempt, stamped later (two writers): the decision stands.
        event("delivery", State.DELIVERY_QUEUED, minutes=5, destination="nap-lt"),
    )
    assert doc is not None and doc.state is State.ARCHIVED and doc.stage == "archive"
    assert doc.delivery is not None and doc.delivery.state is State.DELIVERED
    assert doc.delivery.destination == "nap-lt"
    assert [e.state for e in doc.timeline][-3:] == [
        State.DELIVERY_QUEUED,
        State.DELIVERY_RETRYING,
        State.DELIVERED,
    ]


def test_a_delivery_of_another_revision_or_before_its_archive_changes_nothing_and_a_correction_starts_afresh() -> (
    None
):
    early = fold_all(event("intake", State.RECEIVED), event("delivery", State.DELIVERED, minutes=1))
    assert early is not None and early.delivery is None
    delivered = fold_all(*archived(), event("delivery", State.DELIVERED, minutes=2))
    assert delivered is not None
    assert fold(delivered, event("delivery", State.DELIVERY_REJECTED, revision=2, minutes=3)) is None
    corrected: StatusRecord | None = delivered
    for each in archived(revision=2):
        corrected = fold(corrected, each) or corrected
    assert corrected is not None and corrected.revision == 2 and corrected.delivery is None
    rejected = fold(
        corrected,
        event(
            "delivery", State.DELIVERY_REJECTED, revision=2, minutes=9, owner=Owner.PRODUCTION, reason="mass"
        ),
    )
    assert rejected is not None and rejected.delivery is not None
    assert (rejected.delivery.state, rejected.delivery.owner) == (State.DELIVERY_REJECTED, Owner.PRODUCTION)


def test_a_batch_folds_into_the_record_one_write_per_event_would_leave() -> None:
    received, validated, rendered = (
        event("intake", State.RECEIVED),
        event("validation", State.VALIDATED, minutes=1),
        event("render", State.RENDERED, minutes=2),
    )
    start = fold(None, received)
    assert start is not None
    stale = event("intake", State.RECEIVED, minutes=3)  # a redelivery: changes nothing
    assert fold_batch(start, [validated, stale, rendered]) == fold(fold(start, validated), rendered)
    assert fold_batch(None, [received, validated, rendered]) == fold_all(received, validated, rendered)
    batched = fold_batch(start, [rendered, validated])  # out of order: the render still speaks
    assert batched is not None and (batched.state, batched.seq) == (State.RENDERED, 2)


def test_a_batch_that_changes_nothing_folds_to_none() -> None:
    validated = event("validation", State.VALIDATED, minutes=1)
    start = fold(None, validated)
    assert fold_batch(start, [validated, event("intake", State.RECEIVED)]) is None  # a repeat, a late word
    assert fold_batch(None, []) is None
    assert fold_batch(start, []) is None
