"""The fold of validation's refusal of a reused revision: visible over the archived record, settled by a newer one."""

from __future__ import annotations

import pytest

from services.status.fold import fold
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import State, StatusEvent
from shared.contracts.findings import REVISION_REUSED
from tests.unit.status.test_fold import archived, event, fold_all

pytestmark = pytest.mark.unit

REUSED = Finding(
    code=REVISION_REUSED,
    path="revision",
    message="revision 1 was already received with other content; send the correction as revision 2",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)


def refused(minutes: float, revision: int = 1) -> StatusEvent:
    return event(
        "validation",
        State.BLOCKED,
        revision=revision,
        minutes=minutes,
        findings=(REUSED,),
        owner=Owner.PRODUCTION,
        reason=REUSED.message,
    )


def test_a_refused_resend_speaks_over_the_archived_revision_and_shows_in_its_timeline() -> None:
    doc = fold_all(*archived(), event("delivery", State.DELIVERED, minutes=2), refused(3))

    assert doc is not None and (doc.revision, doc.state, doc.stage) == (
        1,
        State.BLOCKED,
        "validation",
    )
    assert doc.waiting and doc.owners() == ["production"] and doc.findings == (REUSED,)
    assert [(e.stage, e.state) for e in doc.timeline][-2:] == [
        ("delivery", State.DELIVERED),
        ("validation", State.BLOCKED),
    ]
    assert doc.timeline[-1].reason == REUSED.message
    # The kept certificate's delivery stays beside it, and goes on being told.
    assert doc.delivery is not None and doc.delivery.state is State.DELIVERED
    assert fold(doc, refused(4)) is None  # the same refusal again: nothing new


def test_the_resend_of_the_first_content_leaves_the_refusal_open_and_a_newer_revision_settles_it() -> None:
    doc = fold_all(*archived(), refused(3))
    assert doc is not None

    # The same content sent again goes through every stage again, to the kept certificate.
    for stage, state in (
        ("validation", State.VALIDATED),
        ("signing", State.SIGNED),
        ("archive", State.ARCHIVED),
    ):
        assert fold(doc, event(stage, state, minutes=5)) is None
    corrected = doc
    for each in archived(revision=2):
        corrected = fold(corrected, each) or corrected

    assert (corrected.revision, corrected.state, corrected.findings) == (
        2,
        State.ARCHIVED,
        (),
    )


def test_a_refusal_of_an_older_revision_never_overwrites_the_newer_one() -> None:
    doc = fold_all(*archived(revision=2))

    assert doc is not None and fold(doc, refused(3, revision=1)) is None
