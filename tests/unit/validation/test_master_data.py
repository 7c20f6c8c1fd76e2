"""Plants and vehicle groups as the compliance lead's master data, and revisions that move a vehicle.

Validation's handlers with in-memory stand-ins (those of ``test_handlers``) and
a placements store in memory that keeps moves the way ``PlacementStore`` does.
"""

from __future__ import annotations

import datetime as dt

import pytest

from services.validation.decide import Pending
from services.validation.handlers import Validation
from services.validation.policy import PolicyInForce, RulePolicy
from services.validation.revisions import Read
from services.validation.rules import ApprovalTable, Placement, check
from services.validation.settings import ValidationSettings
from shared.contracts import Approval, BuildRecord, Owner, Severity
from shared.contracts.events import Decision, Review, State
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.ivi import IviSchema
from shared.master_table import MasterTable
from shared.stage import Backoff
from tests.unit.validation.test_handlers import (
    GROUP,
    NOON,
    PLANT,
    FixedClock,
    MemoryPending,
    Sent,
    accepted,
    specimen,  # noqa: F401 (a fixture)
    vin_of,
)

pytestmark = pytest.mark.unit


class MemoryPlacements:
    """Moves found against the pending records in memory and kept per record id, as ``PlacementStore``."""

    def __init__(self, pending: MemoryPending) -> None:
        self.pending = pending
        self.moves: dict[str, Placement] = {}

    async def moved_from(self, build: BuildRecord, read: Read | None = None) -> Placement | None:
        if read is None:
            self.pending.reads.append(build.vin)
            stored = self.pending.records.get(build.vin)
            newest = None if stored is None else stored.build
        else:
            newest = None if read.kept is None else read.kept.build
        if newest is not None and newest.revision < build.revision:
            before = Placement.of(newest)
            if before == Placement.of(build):
                return None
            self.moves[build.record_id] = before
            return before
        return self.moves.get(build.record_id)

    async def waiting_named(self, kind: MasterKind, name: str) -> list[Pending]:
        def named(p: Pending) -> str:
            return p.build.vehicle_group if kind is MasterKind.VEHICLE_GROUP else p.build.plant

        return [p for p in self.pending.records.values() if named(p) == name and p.waiting]


def known(kind: MasterKind, name: str, *, is_known: bool = True, minutes: int = 0) -> MasterDataChange:
    at = NOON + dt.timedelta(minutes=minutes)
    return MasterDataChange(kind=kind, name=name, known=is_known, set_by="C. Lead", set_at=at)


def made(
    store: MemoryPending, table: ApprovalTable, *names: MasterDataChange
) -> tuple[Validation, Sent, PolicyInForce]:
    sent, in_force = Sent(), PolicyInForce(ValidationSettings().policy())
    in_force.load_master(names)
    validation = Validation(
        approvals=table,
        pending=store,
        policies=in_force,
        emitter=sent,
        clock=FixedClock(NOON),
        plant_zone=PLANT,
        backoff=Backoff(0, 0),
        placements=MemoryPlacements(store),
    )
    return validation, sent, in_force


def codes(sent: Sent, vin: str) -> list[tuple[State, list[tuple[str, Owner, Severity]]]]:
    return [
        (state, [(f.code, f.owner, f.severity) for f in found])
        for v, state, found in sent.statuses
        if v == vin
    ]


@pytest.fixture
def approval_and_build(specimen: tuple[Approval, BuildRecord]) -> tuple[Approval, BuildRecord]:  # noqa: F811
    approval, build = specimen
    return approval, vin_of(build, "000101")


def everything_known(build: BuildRecord) -> tuple[MasterDataChange, MasterDataChange]:
    return known(MasterKind.VEHICLE_GROUP, build.vehicle_group), known(MasterKind.PLANT, build.plant)


# --- the rule ------------------------------------------------------------------------------------


def test_a_group_and_a_plant_outside_the_master_data_are_errors_owned_by_compliance(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    policy = RulePolicy(known_groups=frozenset({"OTHER"}), known_plants=frozenset({"Elsewhere"}))
    found = {
        (f.code, f.owner, f.severity)
        for f in check(build, ApprovalTable.of(schema, [approval]), policy, NOON.date())
    }
    assert ("GROUP_UNKNOWN", Owner.COMPLIANCE, Severity.ERROR) in found
    assert ("PLANT_UNKNOWN", Owner.COMPLIANCE, Severity.ERROR) in found
    known_ones = RulePolicy(
        known_groups=frozenset({build.vehicle_group}), known_plants=frozenset({build.plant})
    )
    codes_found = {
        f.code for f in check(build, ApprovalTable.of(schema, [approval]), known_ones, NOON.date())
    }
    assert not codes_found & {"GROUP_UNKNOWN", "PLANT_UNKNOWN"}


def test_without_master_data_read_no_name_is_checked(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    """A workbench check of sample files reads no topic: RulePolicy() holds no one to names."""
    approval, build = approval_and_build
    found = {f.code for f in check(build, ApprovalTable.of(schema, [approval]), RulePolicy(), NOON.date())}
    assert not found & {"GROUP_UNKNOWN", "PLANT_UNKNOWN"}


def test_the_newest_change_of_a_name_wins_and_a_withdrawn_name_is_not_known() -> None:
    table = MasterTable([known(MasterKind.PLANT, "Durban"), known(MasterKind.VEHICLE_GROUP, "Durban")])
    assert table.known(MasterKind.PLANT) == {"Durban"} == table.known(MasterKind.VEHICLE_GROUP)
    assert table.add(known(MasterKind.PLANT, "Durban", is_known=False, minutes=5))
    assert not table.add(known(MasterKind.PLANT, "Durban", minutes=1))  # older: read again after a start
    assert table.known(MasterKind.PLANT) == frozenset() and table.is_known(MasterKind.VEHICLE_GROUP, "Durban")


# --- the handlers --------------------------------------------------------------------------------


async def test_a_build_of_an_unknown_group_is_blocked_for_compliance_and_released_when_the_group_is_added(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    store = MemoryPending()
    validation, sent, _ = made(
        store, ApprovalTable.of(schema, [approval]), known(MasterKind.PLANT, build.plant)
    )

    await validation.on_accepted(accepted(build))
    assert codes(sent, build.vin) == [(State.BLOCKED, [("GROUP_UNKNOWN", Owner.COMPLIANCE, Severity.ERROR)])]
    assert sent.validated == []

    await validation.on_master_data(known(MasterKind.VEHICLE_GROUP, GROUP, minutes=1))

    assert sent.states(build.vin) == [State.BLOCKED, State.VALIDATED]
    assert [v.build.vin for v in sent.validated] == [build.vin]
    await validation.on_master_data(known(MasterKind.VEHICLE_GROUP, GROUP, minutes=1))  # a repeat
    assert len(sent.statuses) == 2


async def test_a_plant_added_releases_its_blocked_records_but_not_one_a_reviewer_rejected(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    other = vin_of(build, "000102")
    store = MemoryPending()
    validation, sent, _ = made(
        store, ApprovalTable.of(schema, [approval]), known(MasterKind.VEHICLE_GROUP, GROUP)
    )
    await validation.on_accepted(accepted(build))
    await validation.on_accepted(accepted(other))
    await validation.on_review(
        Review(
            vin=other.vin, revision=other.revision, decision=Decision.REJECT, reviewer="R. Eve", comment="no"
        )
    )

    await validation.on_master_data(known(MasterKind.PLANT, build.plant, minutes=1))

    assert sent.states(build.vin) == [State.BLOCKED, State.VALIDATED]
    assert sent.states(other.vin) == [State.BLOCKED, State.BLOCKED]  # the rejection stands
    assert store.records[other.vin].reviewed_by == "R. Eve"


async def test_a_group_withdrawn_blocks_its_waiting_records_again(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    store = MemoryPending([Pending(build, State.HELD)])
    validation, sent, _ = made(store, ApprovalTable.of(schema, [approval]), *everything_known(build))

    await validation.on_master_data(known(MasterKind.VEHICLE_GROUP, GROUP, is_known=False, minutes=1))

    assert codes(sent, build.vin) == [(State.BLOCKED, [("GROUP_UNKNOWN", Owner.COMPLIANCE, Severity.ERROR)])]


async def test_a_name_read_at_start_is_caught_up_once_when_the_topic_delivers_it_again(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    """Added while no validation ran: the records it blocked before are released after the start."""
    approval, build = approval_and_build
    store = MemoryPending([Pending(build, State.BLOCKED)])
    names = everything_known(build)
    validation, sent, _ = made(store, ApprovalTable.of(schema, [approval]), *names)

    for change in names:
        await validation.on_master_data(change)  # the subscription reads the topic from its beginning
    await validation.on_master_data(names[0])

    assert sent.states(build.vin) == [State.VALIDATED]


async def test_a_revision_that_moves_the_vehicle_to_another_group_waits_for_review_owned_by_compliance(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    moved = build.model_copy(update={"revision": 2, "vehicle_group": "RHINO"})
    store = MemoryPending()
    validation, sent, _ = made(
        store,
        ApprovalTable.of(schema, [approval]),
        *everything_known(build),
        known(MasterKind.VEHICLE_GROUP, "RHINO"),
    )
    await validation.on_accepted(accepted(build))

    await validation.on_accepted(accepted(moved))

    assert codes(sent, build.vin) == [
        (State.VALIDATED, []),
        (State.NEEDS_REVIEW, [("GROUP_CHANGED", Owner.COMPLIANCE, Severity.WARNING)]),
    ]
    (_, _, (finding,)) = sent.statuses[-1]
    assert "from group 'KUDU' to 'RHINO'" in finding.message
    # Decided again on the same revision (a policy change, an approval), the move is still seen.
    await validation.on_master_data(known(MasterKind.VEHICLE_GROUP, "RHINO", is_known=False, minutes=1))
    await validation.on_master_data(known(MasterKind.VEHICLE_GROUP, "RHINO", minutes=2))
    assert sent.states(build.vin)[-1] is State.NEEDS_REVIEW
    assert [f.code for f in sent.statuses[-1][2]] == ["GROUP_CHANGED"]
    # A reviewer confirms the move: released, with the move in its release evidence.
    await validation.on_review(Review(vin=moved.vin, revision=2, decision=Decision.ACCEPT, reviewer="R. Eve"))
    assert sent.states(build.vin)[-1] is State.VALIDATED
    release = sent.validated[-1].release
    assert release is not None and [f.code for f in release.findings] == ["GROUP_CHANGED"]


async def test_a_revision_at_another_plant_waits_for_review_and_one_in_the_same_place_does_not(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    store = MemoryPending()
    validation, sent, _ = made(
        store,
        ApprovalTable.of(schema, [approval]),
        *everything_known(build),
        known(MasterKind.PLANT, "Rosslyn"),
    )
    await validation.on_accepted(accepted(build))
    await validation.on_accepted(
        accepted(build.model_copy(update={"revision": 2, "build_id": "a correction"}))
    )
    await validation.on_accepted(accepted(build.model_copy(update={"revision": 3, "plant": "Rosslyn"})))

    assert [state for state, _f in codes(sent, build.vin)] == [
        State.VALIDATED,
        State.VALIDATED,
        State.NEEDS_REVIEW,
    ]
    assert codes(sent, build.vin)[-1][1] == [("PLANT_CHANGED", Owner.COMPLIANCE, Severity.WARNING)]


async def test_a_later_revision_reads_its_vins_document_once_and_still_sees_a_move_and_a_newer_revision(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    store = MemoryPending()
    validation, sent, _ = made(
        store,
        ApprovalTable.of(schema, [approval]),
        *everything_known(build),
        known(MasterKind.PLANT, "Rosslyn"),
    )
    await validation.on_accepted(accepted(build.model_copy(update={"revision": 2})))
    store.reads.clear()

    await validation.on_accepted(accepted(build.model_copy(update={"revision": 3, "plant": "Rosslyn"})))
    assert store.reads == [build.vin]  # compared, placed and saved after one read, not three
    await validation.on_accepted(accepted(build))  # revision 1 after revision 3: dropped

    assert [state for state, _f in codes(sent, build.vin)] == [State.VALIDATED, State.NEEDS_REVIEW]
    assert codes(sent, build.vin)[-1][1] == [("PLANT_CHANGED", Owner.COMPLIANCE, Severity.WARNING)]
    newest = store.records[build.vin]
    assert (newest.build.revision, newest.state) == (3, State.NEEDS_REVIEW)
    assert set(store.fingerprints[build.vin]) == {2, 3}


async def test_a_name_added_leaves_the_held_and_reviewed_records_of_that_name_as_they_are(
    approval_and_build: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = approval_and_build
    held = vin_of(build, "000103")
    store = MemoryPending([Pending(held, State.HELD)])
    validation, sent, _ = made(
        store, ApprovalTable.of(schema, [approval]), known(MasterKind.VEHICLE_GROUP, GROUP)
    )

    await validation.on_master_data(known(MasterKind.PLANT, held.plant, minutes=1))

    assert sent.statuses == [] and store.records[held.vin].state is State.HELD
