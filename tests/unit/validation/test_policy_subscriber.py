"""The policy subscriber, wired as the service wires it, on FastStream's test broker (no Kafka, no database).

Proof that a change reaches the decisions; the real topic and store are proven
by the integration and end-to-end tests.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker

from devkit.ivi_import import import_document
from services.validation import subscribers
from services.validation.decide import WAITING, Pending
from services.validation.policy import PolicyTable, ReleasePolicy
from services.validation.rules import ApprovalTable, check_digit
from services.validation.settings import ValidationSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import AcceptedRecord, Settlement, State, StatusEvent, now
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.stage import Stage
from tests.unit.shared.test_stage_identity import Recorder

pytestmark = pytest.mark.unit
GROUP = "KUDU"


class MemoryPending:
    """The pending store's part the policy subscriber uses, in memory."""

    def __init__(self, records: list[Pending]) -> None:
        self.records = {p.build.vin: p for p in records}

    async def waiting_in(self, vehicle_group: str) -> list[Pending]:
        return [p for p in self.records.values() if p.build.vehicle_group == vehicle_group and p.waiting]

    async def save(
        self,
        build: BuildRecord,
        state: State,
        waiting: bool,
        reviewed_by: str | None = None,
        approval: Approval | None = None,
        settlement: Settlement | None = None,
    ) -> bool:
        assert waiting is (state in WAITING)
        self.records[build.vin] = Pending(build, state, reviewed_by, settlement)
        return True

    async def save_new(self, decisions: list[tuple[BuildRecord, State, bool, Approval | None]]) -> set[str]:
        saved = set()
        for build, state, _waiting, _approval in decisions:
            if build.vin not in self.records:
                self.records[build.vin] = Pending(build, state, None)
                saved.add(build.vin)
        self.saved_in_bulk = getattr(self, "saved_in_bulk", set()) | saved
        return saved


def vin_of(build: BuildRecord, serial: str) -> BuildRecord:
    vin = build.vin[:11] + serial
    return build.model_copy(update={"vin": vin[:8] + check_digit(vin) + vin[9:], "vehicle_group": GROUP})


async def test_a_group_released_by_a_change_on_the_topic_sends_its_held_records_on_and_keeps_blocked_ones(
    specimen_bytes: bytes, xsd_path: Path
) -> None:
    schema = IviSchema.load(xsd_path)
    approval, build = import_document(specimen_bytes, schema)
    held, blocked = (
        vin_of(build, "000001"),
        vin_of(build, "000002").model_copy(update={"actual_mass_kg": 99_999}),
    )
    elsewhere = vin_of(build, "000003").model_copy(update={"vehicle_group": "CHR"})
    store = MemoryPending(
        [Pending(held, State.HELD), Pending(blocked, State.BLOCKED), Pending(elsewhere, State.HELD)]
    )
    settings = ValidationSettings(release_policy={GROUP: ReleasePolicy.HOLD, "CHR": ReleasePolicy.HOLD})
    stage = Stage("validation", settings)
    runtime = subscribers.Runtime(
        table=ApprovalTable.of(schema, [approval]),
        pending=store,  # type: ignore[arg-type]
        policies=PolicyTable(settings.policy()),
    )
    subscribers.register(stage, runtime)
    change = PolicyChange(vehicle_group=GROUP, policy=ReleasePolicy.AUTO, set_by="C. Lead", set_at=now())

    async with TestKafkaBroker(stage.broker) as broker:
        await broker.publish(change.model_dump_json().encode(), topic=topics.POLICIES, key=GROUP.encode())
        validated = stage.publisher_of(topics.VALIDATED).mock
        status = stage.publisher_of(topics.STATUS).mock
        assert validated is not None and status is not None
        assert [c.args[0]["build"]["vin"] for c in validated.call_args_list] == [held.vin]
        events = [c.args[0] for c in status.call_args_list]
        assert [(e["vin"], e["state"], e["stage"]) for e in events] == [(held.vin, "validated", "validation")]

        # An older change read again (the topic anew from its beginning) neither wins nor decides.
        older = change.model_copy(
            update={"policy": ReleasePolicy.HOLD, "set_at": change.set_at - dt.timedelta(1)}
        )
        await broker.publish(older.model_dump_json().encode(), topic=topics.POLICIES, key=GROUP.encode())
        assert len(status.call_args_list) == 1

    assert store.records[held.vin].state is State.VALIDATED
    assert store.records[blocked.vin].state is State.BLOCKED
    assert store.records[elsewhere.vin].state is State.HELD
    assert runtime.policies.policy_for(GROUP) is ReleasePolicy.AUTO
    assert runtime.policies.policy_for("CHR") is ReleasePolicy.HOLD


class ApprovalArrivesDuringSave(MemoryPending):
    """A store whose first save lets the approval arrive (and its re-check run) before it is written."""

    def __init__(self, arrive: object) -> None:
        super().__init__([])
        self.arrive = arrive

    async def waiting_on(self, approval_key: str) -> list[BuildRecord]:
        return [p.build for p in self.records.values() if p.build.approval.key == approval_key and p.waiting]

    async def save(
        self, build: BuildRecord, state: State, waiting: bool, *args: object, **kwargs: object
    ) -> bool:
        arrive, self.arrive = self.arrive, None
        if arrive is not None:
            await arrive()  # type: ignore[operator]
        return await super().save(build, state, waiting, *args, **kwargs)  # type: ignore[arg-type]


async def test_a_record_decided_without_its_approval_that_arrived_meanwhile_is_decided_again(
    specimen_bytes: bytes, xsd_path: Path
) -> None:
    schema = IviSchema.load(xsd_path)
    approval, build = import_document(specimen_bytes, schema)
    settings = ValidationSettings()
    stage = Stage("validation", settings)
    table = ApprovalTable.of(schema, [])

    async def approval_arrives() -> None:
        # What on_approval does: add it, then re-check the records waiting on it (none saved yet).
        table.add(approval)
        assert await store.waiting_on(approval.key) == []

    store = ApprovalArrivesDuringSave(approval_arrives)
    runtime = subscribers.Runtime(table=table, pending=store, policies=PolicyTable(settings.policy()))  # type: ignore[arg-type]
    stage.emitter = recorder = Recorder(stage)  # the test broker confirms no batch send: keep what is sent
    subscribers.register(stage, runtime)
    record = AcceptedRecord(record_id=build.record_id, received_at=now(), build=build)

    async with TestKafkaBroker(stage.broker) as broker:
        await broker.publish(record.model_dump_json().encode(), topic=topics.ACCEPTED, key=build.vin.encode())
    states = [m.state.value for t, m in recorder.sent if t == topics.STATUS and isinstance(m, StatusEvent)]
    assert states == ["blocked", "validated"], states
    assert [t for t, _m in recorder.sent].count(topics.VALIDATED) == 1
    assert store.records[build.vin].state is State.VALIDATED


async def test_a_new_vins_record_is_decided_and_saved_with_its_batch_and_a_known_vin_one_by_one(
    specimen_bytes: bytes, xsd_path: Path
) -> None:
    schema = IviSchema.load(xsd_path)
    approval, build = import_document(specimen_bytes, schema)
    known = vin_of(build, "900001")
    settings = ValidationSettings()
    stage = Stage("validation", settings)
    store = MemoryPending([Pending(known.model_copy(update={"revision": 1}), State.BLOCKED, None)])
    runtime = subscribers.Runtime(
        table=ApprovalTable.of(schema, [approval]),
        pending=store,  # type: ignore[arg-type]
        policies=PolicyTable(settings.policy()),
    )
    stage.emitter = recorder = Recorder(stage)
    subscribers.register(stage, runtime)
    fresh = AcceptedRecord(record_id=build.record_id, received_at=now(), build=build)
    again = known.model_copy(update={"revision": 2})
    corrected = AcceptedRecord(record_id=again.record_id, received_at=now(), build=again)

    async with TestKafkaBroker(stage.broker) as broker:
        for record in (fresh, corrected):
            await broker.publish(
                record.model_dump_json().encode(), topic=topics.ACCEPTED, key=record.build.vin.encode()
            )
    assert store.saved_in_bulk == {build.vin}  # the known VIN was refused there and saved by save()
    assert store.records[known.vin].build.revision == 2 and store.records[known.vin].state is State.VALIDATED
    validated = [m for t, m in recorder.sent if t == topics.VALIDATED]
    assert sorted(m.record_id for m in validated) == sorted([fresh.record_id, corrected.record_id])
