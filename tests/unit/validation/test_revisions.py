"""Revision conflicts: the content fingerprint, the verdict on a record id sent again, and the handler's refusal."""

from __future__ import annotations

import datetime as dt

import pytest

from devkit.ivi_import import import_document
from services.validation.decide import Pending
from services.validation.revisions import (
    FINGERPRINTS_KEPT,
    Kept,
    fingerprint,
    judged,
    kept_fingerprints,
)
from services.validation.rules import ApprovalTable
from shared.contracts import Approval, BuildRecord, Finding, Owner, Severity
from shared.contracts.events import AcceptedRecord, State
from shared.contracts.findings import REVISION_REUSED
from shared.ivi import IviSchema
from tests.unit.validation.test_handlers import NOON, MemoryPending, made, vin_of

pytestmark = pytest.mark.unit
LATER = NOON + dt.timedelta(minutes=5)


@pytest.fixture(scope="module")
def specimen(specimen_bytes: bytes, schema: IviSchema) -> tuple[Approval, BuildRecord]:
    return import_document(specimen_bytes, schema)


def received(build: BuildRecord, at: dt.datetime = NOON) -> AcceptedRecord:
    """As intake accepts it: a build without a release time is released when received."""
    if build.released_at is None:
        build = build.model_copy(update={"released_at": at})
    return AcceptedRecord(record_id=build.record_id, received_at=at, build=build)


def heavier(build: BuildRecord) -> BuildRecord:
    return build.model_copy(update={"actual_mass_kg": (build.actual_mass_kg or 1574) + 37})


# --- the fingerprint ---------------------------------------------------------------------------


def test_the_fingerprint_is_the_sha256_of_the_canonical_json_whatever_the_order_of_the_fields(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    reordered = BuildRecord.model_validate(dict(reversed(list(build.model_dump(mode="json").items()))))

    assert fingerprint(received(build)) == fingerprint(received(reordered))
    assert len(fingerprint(received(build))) == 64 and int(fingerprint(received(build)), 16) >= 0


def test_a_release_time_intake_filled_in_is_left_out_and_one_the_mes_sent_counts(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    unreleased = build.model_copy(update={"released_at": None})
    # Sent twice without a release time: intake's times of receipt differ, the content does not.
    assert fingerprint(received(unreleased, NOON)) == fingerprint(received(unreleased, LATER))
    stated = build.model_copy(update={"released_at": NOON - dt.timedelta(hours=1)})
    moved = build.model_copy(update={"released_at": NOON - dt.timedelta(hours=2)})
    assert fingerprint(received(stated)) != fingerprint(received(moved))


def test_every_other_field_counts_the_mass_and_the_mes_build_id_too(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    first = fingerprint(received(build))

    assert fingerprint(received(heavier(build))) != first
    assert fingerprint(received(build.model_copy(update={"build_id": "another"}))) != first


# --- the verdict -------------------------------------------------------------------------------


def test_a_record_id_not_received_before_is_decided_as_received(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    content = fingerprint(received(build))

    assert judged(build, content, None) is build
    second = build.model_copy(update={"revision": 2})
    assert judged(second, content, Kept(build, {1: content})) is second
    # An older revision kept before fingerprints were: taken as received (superseded by the newest).
    assert judged(build, content, Kept(second, {})) is build


def test_the_newest_revision_kept_before_fingerprints_were_is_compared_by_its_build(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    unreleased = build.model_copy(update={"released_at": None})
    first, again = received(unreleased, NOON), received(unreleased, LATER)
    legacy = Kept(first.build, {})  # no fingerprints: kept before they were

    assert judged(again.build, fingerprint(again), legacy) == first.build  # intake's times differ only
    assert judged(first.build, fingerprint(received(first.build, LATER)), legacy) == first.build
    heavier_again = received(heavier(unreleased), LATER)
    verdict = judged(heavier_again.build, fingerprint(heavier_again), legacy)
    assert isinstance(verdict, Finding) and verdict.code == REVISION_REUSED
    # A release time the MES states that differs from the kept one is other content.
    stated = received(first.build.model_copy(update={"released_at": NOON - dt.timedelta(hours=1)}), LATER)
    assert isinstance(judged(stated.build, fingerprint(stated), legacy), Finding)


def test_the_same_content_again_is_decided_on_the_build_kept_so_the_same_certificate_comes_out(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    unreleased = build.model_copy(update={"released_at": None})
    first, again = received(unreleased, NOON), received(unreleased, LATER)
    kept = Kept(first.build, {1: fingerprint(first)})

    assert judged(again.build, fingerprint(again), kept) == first.build
    assert first.build.released_at == NOON


def test_other_content_under_a_revision_received_is_refused_naming_the_next_free_revision(
    specimen: tuple[Approval, BuildRecord],
) -> None:
    _approval, build = specimen
    first = received(build)
    second = received(heavier(build).model_copy(update={"revision": 2}))
    kept = Kept(second.build, {1: fingerprint(first), 2: fingerprint(second)})
    late_correction = received(heavier(build))

    verdict = judged(late_correction.build, fingerprint(late_correction), kept)

    assert isinstance(verdict, Finding)
    assert (verdict.code, verdict.owner, verdict.severity) == (
        REVISION_REUSED,
        Owner.PRODUCTION,
        Severity.ERROR,
    )
    assert "revision 1 of" in verdict.message and "send the correction as revision 3" in verdict.message


def test_a_vin_keeps_the_fingerprints_of_its_newest_revisions_only() -> None:
    many = {revision: f"{revision:064x}" for revision in range(1, FINGERPRINTS_KEPT + 1)}

    kept = kept_fingerprints(many, FINGERPRINTS_KEPT + 1, "f" * 64)

    assert len(kept) == FINGERPRINTS_KEPT and 1 not in kept and kept[FINGERPRINTS_KEPT + 1] == "f" * 64
    assert kept_fingerprints({1: "a" * 64}, 2, None) == {1: "a" * 64}


# --- the handler -------------------------------------------------------------------------------


async def test_a_correction_under_the_same_revision_is_refused_and_nothing_goes_on_while_a_resend_is_quiet(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    first = vin_of(build, "700001").model_copy(update={"released_at": None, "actual_mass_kg": 1574})
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]))
    await validation.on_accepted(received(first, NOON))
    assert sent.states() == [State.VALIDATED]

    await validation.on_accepted(received(first.model_copy(update={"actual_mass_kg": 1611}), LATER))

    vin, state, findings = sent.statuses[-1]
    assert (vin, state, [f.code for f in findings]) == (
        first.vin,
        State.BLOCKED,
        [REVISION_REUSED],
    )
    assert findings[0].owner is Owner.PRODUCTION and "revision 2" in findings[0].message
    assert len(sent.validated) == 1  # nothing sent on to render
    kept = store.records[first.vin]
    assert (kept.build.actual_mass_kg, kept.state) == (
        1574,
        State.VALIDATED,
    )  # the first one stands

    await validation.on_accepted(received(first, LATER + dt.timedelta(minutes=1)))

    # The same content again: decided again on the build kept, the same record sent on, no finding.
    assert sent.states()[-1] is State.VALIDATED and sent.statuses[-1][2] == ()
    assert sent.validated[-1].build == sent.validated[0].build
    assert sent.validated[-1].build.released_at == NOON


async def test_a_reused_revision_in_the_batch_that_brought_its_vin_first_is_refused_too(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    first = received(vin_of(build, "700002"))
    other = received(heavier(first.build), LATER)
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]))

    await validation.prepare([(first, None)])  # the first of its VIN in the batch, saved in bulk
    for record in (first, other):
        await validation.on_accepted(record)

    assert store.saved_in_bulk == {first.build.vin}
    assert store.fingerprints[first.build.vin] == {1: fingerprint(first)}
    assert [(s, [f.code for f in fs]) for _v, s, fs in sent.statuses] == [
        (State.VALIDATED, []),
        (State.BLOCKED, [REVISION_REUSED]),
    ]
    assert [v.record_id for v in sent.validated] == [first.record_id]
    assert store.records[first.build.vin] == Pending(first.build, State.VALIDATED)
