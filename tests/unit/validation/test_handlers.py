"""Validation's handlers, called directly with in-memory stand-ins for the store, the emitter and the clock.

Proof of what each handler decides, saves and announces; the real topics and
store are proven by the integration and end-to-end tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from devkit.ivi_import import import_document
from services.validation.decide import WAITING, Pending
from services.validation.handlers import Validation
from services.validation.policy import PolicyInForce, ReleasePolicy
from services.validation.ports import NewDecision
from services.validation.revisions import Kept, Read
from services.validation.rules import ApprovalTable, check_digit
from services.validation.settings import ValidationSettings
from shared import topics
from shared.contracts import Approval, BuildRecord, Finding
from shared.contracts.approvals import ApprovalSource, RecordType
from shared.contracts.events import AcceptedRecord, Decision, Review, Settlement, State, ValidatedRecord
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.stage import Backoff, Unusable

pytestmark = pytest.mark.unit
GROUP = "KUDU"
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
PLANT = ZoneInfo("Africa/Johannesburg")  # UTC+2 all year


class MemoryPending:
    """The pending store in memory: the newest revision per VIN wins, as in ``PendingStore``."""

    def __init__(self, records: Iterable[Pending] = ()) -> None:
        self.records = {p.build.vin: p for p in records}
        self.fingerprints: dict[str, dict[int, str]] = {}  # per VIN, as ``PendingStore`` keeps them
        self.saved_in_bulk: set[str] = set()
        self.offered_in_bulk: list[str] = []
        self.saved_one_by_one: list[str] = []
        self.failures_to_come = 0  # the next calls that fail as if the database were away
        self.reads: list[str] = []  # the VIN of each read of a VIN's document, as ``PendingStore`` makes them
        self.scans = 0  # reads of the waiting records of approvals (each a whole collection on FerretDB)

    def _maybe_fail(self) -> None:
        if self.failures_to_come:
            self.failures_to_come -= 1
            raise ConnectionError("the database is away")

    async def save(
        self,
        build: BuildRecord,
        state: State,
        waiting: bool,
        reviewed_by: str | None = None,
        approval: Approval | None = None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> bool:
        self._maybe_fail()
        assert waiting is (state in WAITING)
        if read is None:
            self.reads.append(build.vin)
            newest = self.records.get(build.vin)
            known = None if newest is None else newest.build.revision
        else:  # compared with what the caller read, as ``PendingStore`` does
            known = None if read.kept is None else read.kept.build.revision
        if known is not None and known > build.revision:
            return False
        self.records[build.vin] = Pending(build, state, reviewed_by, settlement)
        if fingerprint is not None:
            self.fingerprints.setdefault(build.vin, {})[build.revision] = fingerprint
        self.saved_one_by_one.append(build.vin)
        return True

    async def save_new(
        self, decisions: list[NewDecision], fingerprints: Mapping[str, str] | None = None
    ) -> set[str]:
        self._maybe_fail()
        saved = set()
        for build, state, _waiting, _approval in decisions:
            if build.vin not in self.records:
                self.records[build.vin] = Pending(build, state)
                content = (fingerprints or {}).get(build.record_id)
                self.fingerprints[build.vin] = {build.revision: content} if content else {}
                saved.add(build.vin)
        self.saved_in_bulk |= saved
        self.offered_in_bulk += [build.vin for build, *_rest in decisions]
        return saved

    async def get(self, vin: str) -> Pending | None:
        self._maybe_fail()
        self.reads.append(vin)
        return self.records.get(vin)

    async def kept(self, vin: str) -> Kept | None:
        self._maybe_fail()
        self.reads.append(vin)
        known = self.records.get(vin)
        return None if known is None else Kept(known.build, dict(self.fingerprints.get(vin, {})))

    async def waiting_on(self, approval_key: str) -> list[BuildRecord]:
        self._maybe_fail()
        return [p.build for p in self.records.values() if p.build.approval.key == approval_key and p.waiting]

    async def waiting_on_any(self, approval_keys: Sequence[str]) -> dict[str, list[Pending]]:
        self._maybe_fail()
        self.scans += 1
        found: dict[str, list[Pending]] = {}
        for p in self.records.values():
            if p.build.approval.key in approval_keys and p.waiting:
                found.setdefault(p.build.approval.key, []).append(p)
        return found

    async def waiting_in(self, vehicle_group: str) -> list[Pending]:
        self._maybe_fail()
        return [p for p in self.records.values() if p.build.vehicle_group == vehicle_group and p.waiting]

    async def waiting(self) -> list[Pending]:
        self._maybe_fail()
        self.scans += 1
        return [p for p in self.records.values() if p.waiting]


class Sent:
    """The emitter, keeping what it would publish."""

    def __init__(self) -> None:
        self.validated: list[ValidatedRecord] = []
        self.statuses: list[tuple[str, State, tuple[Finding, ...]]] = []
        self.record_types: dict[str, RecordType | None] = {}  # per VIN, as its last status event said

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        assert topic == topics.VALIDATED and isinstance(model, ValidatedRecord)
        assert key == model.build.vin and correlation_id == model.record_id
        self.validated.append(model)

    async def status(
        self,
        *,
        vin: str,
        revision: int,
        state: State,
        build: BuildRecord | None = None,
        findings: Iterable[Finding] = (),
        reason: str | None = None,
        record_type: RecordType | None = None,
    ) -> None:
        self.statuses.append((vin, state, tuple(findings)))
        self.record_types[vin] = record_type

    def states(self, vin: str | None = None) -> list[State]:
        return [state for v, state, _f in self.statuses if vin in (None, v)]


class FixedClock:
    def __init__(self, instant: dt.datetime) -> None:
        self.instant = instant

    def now(self) -> dt.datetime:
        return self.instant


def made(
    store: MemoryPending,
    table: ApprovalTable,
    settings: ValidationSettings | None = None,
    at: dt.datetime = NOON,
    zone: dt.tzinfo = PLANT,
) -> tuple[Validation, Sent]:
    sent = Sent()
    validation = Validation(
        approvals=table,
        pending=store,
        policies=PolicyInForce((settings or ValidationSettings()).policy()),
        emitter=sent,
        clock=FixedClock(at),
        plant_zone=zone,
        backoff=Backoff(0, 0),
    )
    return validation, sent


@pytest.fixture(scope="module")
def specimen(specimen_bytes: bytes, schema: IviSchema) -> tuple[Approval, BuildRecord]:
    return import_document(specimen_bytes, schema)


def vin_of(build: BuildRecord, serial: str) -> BuildRecord:
    vin = build.vin[:11] + serial
    return build.model_copy(update={"vin": vin[:8] + check_digit(vin) + vin[9:], "vehicle_group": GROUP})


def accepted(build: BuildRecord) -> AcceptedRecord:
    return AcceptedRecord(record_id=build.record_id, received_at=NOON, build=build)


# --- status events ----------------------------------------------------------------------------


async def test_status_events_name_the_record_type_of_the_approval_and_none_while_it_is_unknown(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    incomplete = approval.model_copy(
        update={"certificate": {**approval.certificate, "StageOfCompletion": "I"}}
    )
    validation, sent = made(MemoryPending(), ApprovalTable.of(schema, []))
    first = vin_of(build, "000091")
    await validation.on_accepted(accepted(first))
    assert sent.states(first.vin) == [State.BLOCKED]  # its approval is not known yet
    assert sent.record_types[first.vin] is None
    await validation.on_approval(incomplete)
    assert sent.states(first.vin)[-1] is State.VALIDATED
    assert sent.record_types[first.vin] == "I"


# --- policy changes ----------------------------------------------------------------------------


async def test_a_group_released_by_a_change_sends_its_held_records_on_and_keeps_blocked_ones(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    held = vin_of(build, "000001")
    blocked = vin_of(build, "000002").model_copy(update={"actual_mass_kg": 99_999})
    elsewhere = vin_of(build, "000003").model_copy(update={"vehicle_group": "CHR"})
    store = MemoryPending(
        [Pending(held, State.HELD), Pending(blocked, State.BLOCKED), Pending(elsewhere, State.HELD)]
    )
    settings = ValidationSettings(release_policy={GROUP: ReleasePolicy.HOLD, "CHR": ReleasePolicy.HOLD})
    validation, sent = made(store, ApprovalTable.of(schema, [approval]), settings)
    change = PolicyChange(vehicle_group=GROUP, policy=ReleasePolicy.AUTO, set_by="C. Lead", set_at=NOON)

    await validation.on_policy(change)

    assert [v.build.vin for v in sent.validated] == [held.vin]
    assert [(vin, state) for vin, state, _f in sent.statuses] == [(held.vin, State.VALIDATED)]
    # An older change read again (the topic anew from its beginning) neither wins nor decides.
    older = change.model_copy(update={"policy": ReleasePolicy.HOLD, "set_at": NOON - dt.timedelta(1)})
    await validation.on_policy(older)
    assert len(sent.statuses) == 1
    assert store.records[held.vin].state is State.VALIDATED
    assert store.records[blocked.vin].state is State.BLOCKED
    assert store.records[elsewhere.vin].state is State.HELD
    assert validation.policies.policy.policy_for(GROUP) is ReleasePolicy.AUTO
    assert validation.policies.policy.policy_for("CHR") is ReleasePolicy.HOLD


async def test_a_change_is_carried_out_though_the_store_fails_at_first(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    """The policies are read in no consumer group: a change that raised would never come again."""
    approval, build = specimen
    held = vin_of(build, "000011")
    store = MemoryPending([Pending(held, State.HELD)])
    validation, sent = made(
        store, ApprovalTable.of(schema, [approval]), ValidationSettings(release_policy={GROUP: "hold"})
    )
    store.failures_to_come = 3  # reading the group's records twice, then saving the decision once

    await validation.on_policy(
        PolicyChange(vehicle_group=GROUP, policy=ReleasePolicy.AUTO, set_by="C. Lead", set_at=NOON)
    )

    assert sent.states(held.vin) == [State.VALIDATED] and store.records[held.vin].state is State.VALIDATED
    assert store.failures_to_come == 0 and validation.backoff.failures == 0


# --- approvals ---------------------------------------------------------------------------------


class ApprovalArrivesDuringSave(MemoryPending):
    """A store whose first save lets the approval arrive (and its re-check run) before it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.arrive: Callable[[], Awaitable[None]] | None = None

    async def save(
        self,
        build: BuildRecord,
        state: State,
        waiting: bool,
        reviewed_by: str | None = None,
        approval: Approval | None = None,
        settlement: Settlement | None = None,
        fingerprint: str | None = None,
        read: Read | None = None,
    ) -> bool:
        arrive, self.arrive = self.arrive, None
        if arrive is not None:
            await arrive()
        return await super().save(build, state, waiting, reviewed_by, approval, settlement, fingerprint, read)


async def test_a_record_decided_without_its_approval_that_arrived_meanwhile_is_decided_again(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    store = ApprovalArrivesDuringSave()
    validation, sent = made(store, ApprovalTable.of(schema, []))

    async def approval_arrives() -> None:
        await validation.on_approval(approval)  # re-checks the records waiting on it: none saved yet
        assert sent.statuses == []

    store.arrive = approval_arrives
    await validation.on_accepted(accepted(build))

    assert sent.states() == [State.BLOCKED, State.VALIDATED]
    assert len(sent.validated) == 1 and store.records[build.vin].state is State.VALIDATED


async def test_approvals_taken_in_one_batch_release_their_records_with_one_read_even_after_a_fault(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    others = [approval.model_copy(update={"key": f"{approval.key}-{n}"}) for n in range(5)]
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, []))
    await validation.on_accepted(accepted(build))
    assert sent.states() == [State.BLOCKED]

    for taken in [*others, approval]:  # one batch of the approvals topic
        await validation.take_approval(taken)
    store.failures_to_come = 1  # the settle's read fails: the batch comes again
    with pytest.raises(ConnectionError):
        await validation.settle_approvals()
    for taken in [*others, approval]:
        await validation.take_approval(taken)  # known by now: nothing noted again
    await validation.settle_approvals()

    assert sent.states() == [State.BLOCKED, State.VALIDATED]
    assert store.scans == 1  # one read answered (the failed one raised): not one per approval


async def test_an_approval_that_arrives_releases_the_records_blocked_on_it(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, []))
    await validation.on_accepted(accepted(build))
    (_vin, state, findings), *_ = sent.statuses
    assert state is State.BLOCKED and [f.code for f in findings] == ["APPROVAL_UNKNOWN"]

    await validation.on_approval(approval)
    await validation.on_approval(approval)  # a repeat decides nothing again
    by_another = ApprovalSource(by="Thandi Nkosi", via="workspace", at=NOON)
    await validation.on_approval(
        approval.model_copy(update={"source": by_another})
    )  # nor the same data again

    assert validation.approvals.get(approval.key) is approval  # kept: who published it is not master data

    assert sent.states() == [State.BLOCKED, State.VALIDATED]
    assert store.records[build.vin].state is State.VALIDATED


# --- accepted records, in batches --------------------------------------------------------------


async def test_a_new_vins_record_is_decided_and_saved_with_its_batch_and_a_known_vin_one_by_one(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    known = vin_of(build, "900001")
    store = MemoryPending([Pending(known.model_copy(update={"revision": 1}), State.BLOCKED)])
    validation, sent = made(store, ApprovalTable.of(schema, [approval]))
    fresh, corrected = accepted(build), accepted(known.model_copy(update={"revision": 2}))

    await validation.prepare([(fresh, None), (corrected, None)])
    for record in (fresh, corrected):
        await validation.on_accepted(record)

    assert store.saved_in_bulk == {build.vin}  # the known VIN's later revision saved by save()
    assert store.offered_in_bulk == [build.vin]  # and not even offered to the bulk insert
    assert store.records[known.vin].build.revision == 2 and store.records[known.vin].state is State.VALIDATED
    assert sorted(v.record_id for v in sent.validated) == sorted([fresh.record_id, corrected.record_id])


async def test_a_later_revision_of_a_vin_not_known_yet_is_saved_one_by_one_after_its_batch(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]))
    record = accepted(build.model_copy(update={"revision": 3}))  # revisions 1 and 2 never came

    await validation.prepare([(record, None)])
    await validation.on_accepted(record)

    assert store.offered_in_bulk == [] and store.saved_one_by_one == [build.vin]
    assert store.records[build.vin].build.revision == 3 and sent.states() == [State.VALIDATED]


async def test_an_accepted_record_is_decided_and_saved_when_no_batch_was_prepared(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]))

    await validation.on_accepted(accepted(build))

    assert store.records[build.vin].state is State.VALIDATED and store.saved_in_bulk == set()
    assert sent.states() == [State.VALIDATED] and [v.record_id for v in sent.validated] == [build.record_id]


async def test_a_batch_decision_is_taken_again_when_the_groups_policy_changed_after_the_batch_was_prepared(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    record = accepted(vin_of(build, "000021"))
    settings = ValidationSettings(release_policy={GROUP: ReleasePolicy.HOLD})
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]), settings)
    await validation.prepare([(record, None)])
    assert store.records[record.build.vin].state is State.HELD  # saved with the batch, not yet announced

    await validation.on_policy(
        PolicyChange(vehicle_group=GROUP, policy=ReleasePolicy.AUTO, set_by="C. Lead", set_at=NOON)
    )
    await validation.on_accepted(record)

    # Never announced held after the release: the batch's decision is taken again, under the new policy.
    assert State.HELD not in sent.states() and sent.states()[-1] is State.VALIDATED
    assert store.records[record.build.vin].state is State.VALIDATED


async def test_a_batch_that_comes_again_has_its_record_decided_again_not_announced_from_before(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    record = accepted(build)
    validation, sent = made(store := MemoryPending(), ApprovalTable.of(schema, [approval]))
    await validation.prepare([(record, None)])
    # The batch failed before this record was announced and comes again: the VIN is known now, so
    # prepare leaves it out, and the first batch's decision is not given out any more.
    await validation.prepare([(record, None)])
    await validation.on_accepted(record)
    await validation.on_accepted(record)  # delivered twice: decided twice, as without any batch

    assert store.saved_one_by_one == [build.vin, build.vin]
    assert sent.states() == [State.VALIDATED, State.VALIDATED] and len(sent.validated) == 2


# --- reviews -----------------------------------------------------------------------------------


async def test_a_reviewers_acceptance_releases_the_record_settled_at_the_clocks_instant(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    group_reviewed = ValidationSettings(release_policy={GROUP: ReleasePolicy.REVIEW})
    waiting = vin_of(build, "000031")
    store = MemoryPending([Pending(waiting, State.NEEDS_REVIEW)])
    validation, sent = made(store, ApprovalTable.of(schema, [approval]), group_reviewed, at=NOON)

    await validation.on_review(
        Review(vin=waiting.vin, revision=1, decision=Decision.ACCEPT, reviewer="R. Reviewer", comment="ok")
    )

    (released,) = sent.validated
    release = released.release
    assert released.reviewed_by == "R. Reviewer" and release is not None and release.decided_at == NOON
    assert release.settled_by is not None and release.settled_by.at == NOON
    assert store.records[waiting.vin].state is State.VALIDATED


async def test_a_reviewers_rejection_blocks_the_record_and_a_review_of_nothing_waiting_is_unusable(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    waiting = vin_of(build, "000032")
    store = MemoryPending([Pending(waiting, State.HELD)])
    validation, sent = made(store, ApprovalTable.of(schema, [approval]))

    await validation.on_review(
        Review(vin=waiting.vin, revision=1, decision=Decision.REJECT, reviewer="R. Reviewer", comment="dent")
    )

    ((_vin, state, findings),) = sent.statuses
    assert state is State.BLOCKED and [f.code for f in findings] == ["REVIEW_REJECTED"]
    assert store.records[waiting.vin].state is State.BLOCKED and store.records[waiting.vin].reviewed_by
    with pytest.raises(Unusable):
        await validation.on_review(
            Review(vin=waiting.vin, revision=2, decision=Decision.ACCEPT, reviewer="R. Reviewer")
        )


async def test_a_record_a_reviewer_rejected_stays_blocked_when_its_approval_is_corrected(
    specimen: tuple[Approval, BuildRecord], schema: IviSchema
) -> None:
    approval, build = specimen
    waiting = vin_of(build, "000033")
    store = MemoryPending([Pending(waiting, State.HELD)])
    validation, sent = made(store, ApprovalTable.of(schema, [approval]))
    await validation.on_review(
        Review(vin=waiting.vin, revision=1, decision=Decision.REJECT, reviewer="R. Reviewer", comment="dent")
    )

    corrected = approval.model_copy(update={"issue_date": approval.issue_date + dt.timedelta(days=1)})
    await validation.on_approval(corrected)

    assert validation.approvals.get(approval.key) is corrected  # the correction was taken
    assert sent.states() == [State.BLOCKED]  # and released nothing: the rejection stands
    assert store.records[waiting.vin].state is State.BLOCKED and store.records[waiting.vin].reviewed_by


# --- the plant's calendar ----------------------------------------------------------------------


def made_on_the_27th(build: BuildRecord) -> BuildRecord:
    """A build made, released and signed on 2026-11-27, a plant's date as the MES states it."""
    day = dt.date(2026, 11, 27)
    return build.model_copy(
        update={
            "manufactured_on": day,
            "released_at": dt.datetime(2026, 11, 27, 0, 15, tzinfo=PLANT),
            "signature_date": day,
        }
    )


@pytest.mark.parametrize(
    ("instant", "zone", "state"),
    [
        # 22:30 UTC on the 26th is 00:30 on the 27th in Johannesburg: made today, at the plant.
        (dt.datetime(2026, 11, 26, 22, 30, tzinfo=dt.UTC), PLANT, State.VALIDATED),
        # The same instant with UTC as the plant's zone: the 27th is still tomorrow.
        (dt.datetime(2026, 11, 26, 22, 30, tzinfo=dt.UTC), dt.UTC, State.BLOCKED),
        # 21:30 UTC is 23:30 on the 26th in Johannesburg: the 27th is tomorrow there too.
        (dt.datetime(2026, 11, 26, 21, 30, tzinfo=dt.UTC), PLANT, State.BLOCKED),
    ],
)
async def test_a_date_of_manufacture_is_in_the_future_only_after_the_plants_today(
    specimen: tuple[Approval, BuildRecord],
    schema: IviSchema,
    instant: dt.datetime,
    zone: dt.tzinfo,
    state: State,
) -> None:
    approval, build = specimen
    validation, sent = made(MemoryPending(), ApprovalTable.of(schema, [approval]), at=instant, zone=zone)

    await validation.on_accepted(accepted(made_on_the_27th(build)))

    ((_vin, decided, findings),) = sent.statuses
    assert decided is state
    assert [f.code for f in findings] == ([] if state is State.VALIDATED else ["MANUFACTURED_IN_FUTURE"])
    for validated in sent.validated:
        assert validated.release is not None
        assert validated.release.decided_at == instant  # the instant itself is kept in UTC


def test_the_plants_time_zone_is_a_setting_refusing_an_unknown_zone() -> None:
    assert ValidationSettings().plant_zone() == PLANT
    assert ValidationSettings(plant_timezone="UTC").plant_zone() == ZoneInfo("UTC")
    with pytest.raises(ValueError, match="no IANA time zone"):
        ValidationSettings(plant_timezone="Mars/Olympus_Mons")
