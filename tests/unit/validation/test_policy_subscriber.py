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
from shared.contracts.events import Settlement, State, now
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.stage import Stage

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
