"""Two validation instances over one pending store: each waiting record decided once when a table changes.

Each instance keeps the whole approval, policy and master-data tables; only the
one holding a VIN's partition of coc.records.accepted.v1 (``HeldPartitions``) decides
its waiting record again. Partitions that come to an instance are handed over:
their waiting records are decided against its tables then. The store here lets
both instances read the waiting records before either saves a decision, as two
processes reading one collection at the same moment do.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer

from services.validation.decide import Pending
from services.validation.handlers import Validation
from services.validation.policy import PolicyInForce, ReleasePolicy
from services.validation.rules import ApprovalTable
from services.validation.settings import ValidationSettings
from shared import topics
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import State
from shared.contracts.masterdata import MasterDataChange, MasterKind
from shared.contracts.policies import PolicyChange
from shared.ivi import IviSchema
from shared.runtime.partitions import HeldPartitions, partition_of
from shared.stage import Backoff
from tests.unit.shared.runtime_fakes import TopicMetadata, holding
from tests.unit.validation.test_handlers import (
    GROUP,
    NOON,
    PLANT,
    FixedClock,
    MemoryPending,
    Sent,
    specimen,  # noqa: F401 (a fixture)
    vin_of,
)
from tests.unit.validation.test_master_data import MemoryPlacements, known

pytestmark = pytest.mark.unit
PARTITIONS = 12
LOWER, UPPER = frozenset(range(6)), frozenset(range(6, PARTITIONS))


class AtOnce(MemoryPending):
    """Reads of the waiting records let the other instance read too before anything is saved."""

    async def waiting_on_any(self, approval_keys: object) -> dict[str, list[Pending]]:
        found = await super().waiting_on_any(approval_keys)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return found

    async def waiting_in(self, vehicle_group: str) -> list[Pending]:
        found = await super().waiting_in(vehicle_group)
        await asyncio.sleep(0)
        return found


def instance(
    store: MemoryPending, approvals: Iterable[Approval], schema: IviSchema, **policy: ReleasePolicy
) -> tuple[Validation, Sent, HeldPartitions]:
    held = HeldPartitions(topics.ACCEPTED)
    held.consumer = cast(AIOKafkaConsumer, TopicMetadata(topics.ACCEPTED, PARTITIONS))
    sent, in_force = Sent(), PolicyInForce(ValidationSettings(release_policy=policy).policy())
    validation = Validation(
        approvals=ApprovalTable.of(schema, list(approvals)),  # each instance its own table
        pending=store,
        policies=in_force,
        emitter=sent,
        clock=FixedClock(NOON),
        plant_zone=PLANT,
        backoff=Backoff(0, 0),
        placements=MemoryPlacements(store),
        ownership=held,
    )
    held.on_assigned.append(validation.take_over)
    return validation, sent, held


def vehicles(build: BuildRecord) -> list[BuildRecord]:
    """Sixteen VINs on both halves of the partitions."""
    builds = [vin_of(build, f"{n:06d}") for n in range(300, 316)]
    assert {partition_of(b.vin, PARTITIONS) in LOWER for b in builds} == {True, False}
    return builds


def validated_vins(*sent: Sent) -> Counter[str]:
    return Counter(v.build.vin for s in sent for v in s.validated)


def decided(sent: Sent, state: State) -> set[str]:
    return {vin for vin, s, _f in sent.statuses if s is state}


async def two_instances(
    store: MemoryPending, approvals: Iterable[Approval], schema: IviSchema, **policy: ReleasePolicy
) -> tuple[tuple[Validation, Sent], tuple[Validation, Sent]]:
    """Two instances, the first holding partitions 0-5, the second 6-11, each handed over what it holds."""
    approvals = list(approvals)
    first, first_sent, first_held = instance(store, approvals, schema, **policy)
    second, second_sent, second_held = instance(store, approvals, schema, **policy)
    await holding(first_held, LOWER)
    await holding(second_held, UPPER)
    return (first, first_sent), (second, second_sent)


async def test_an_approval_that_arrives_is_decided_once_per_waiting_record_by_the_instance_holding_it(
    specimen: tuple[Approval, BuildRecord],  # noqa: F811
    schema: IviSchema,
) -> None:
    approval, build = specimen
    builds = vehicles(build)
    store = AtOnce([Pending(b, State.BLOCKED) for b in builds])  # blocked: their approval unknown
    (first, first_sent), (second, second_sent) = await two_instances(store, [], schema)
    assert first_sent.statuses == second_sent.statuses == []  # the hand-over changed nothing: nothing said

    async def arrives(validation: Validation) -> None:  # each reads the approvals topic whole
        await validation.take_approval(approval)
        await validation.settle_approvals()

    await asyncio.gather(arrives(first), arrives(second))

    assert validated_vins(first_sent, second_sent) == Counter(b.vin for b in builds)  # each once
    assert {v.build.vin for v in first_sent.validated} == {
        b.vin for b in builds if partition_of(b.vin, PARTITIONS) in LOWER
    }
    assert len(first_sent.statuses) + len(second_sent.statuses) == len(builds)


async def test_a_policy_change_releases_each_held_record_once_between_two_instances(
    specimen: tuple[Approval, BuildRecord],  # noqa: F811
    schema: IviSchema,
) -> None:
    approval, build = specimen
    builds = vehicles(build)
    store = AtOnce([Pending(b, State.HELD) for b in builds])
    (first, first_sent), (second, second_sent) = await two_instances(
        store, [approval], schema, **{GROUP: ReleasePolicy.HOLD}
    )
    change = PolicyChange(vehicle_group=GROUP, policy=ReleasePolicy.AUTO, set_by="C. Lead", set_at=NOON)

    await asyncio.gather(first.on_policy(change), second.on_policy(change))

    assert validated_vins(first_sent, second_sent) == Counter(b.vin for b in builds)
    assert all(store.records[b.vin].state is State.VALIDATED for b in builds)


async def test_a_group_added_releases_each_record_blocked_on_it_once_between_two_instances(
    specimen: tuple[Approval, BuildRecord],  # noqa: F811
    schema: IviSchema,
) -> None:
    approval, build = specimen
    builds = vehicles(build)
    store = AtOnce([Pending(b, State.BLOCKED) for b in builds])  # blocked: their group unknown
    (first, first_sent), (second, second_sent) = await two_instances(store, [approval], schema)
    plant = known(MasterKind.PLANT, build.plant)
    for validation in (first, second):
        validation.policies.learn(plant)
    group = known(MasterKind.VEHICLE_GROUP, GROUP, minutes=1)
    reads = 0

    async def named(validation: Validation, change: MasterDataChange) -> None:
        nonlocal reads
        await validation.on_master_data(change)
        reads += 1

    placements = [cast(MemoryPlacements, v.placements) for v in (first, second)]
    for memory in placements:  # both read the records named before either saves
        waiting_named = memory.waiting_named

        async def at_once(kind: MasterKind, name: str, read: object = waiting_named) -> list[Pending]:
            found = await read(kind, name)  # type: ignore[operator]
            await asyncio.sleep(0)
            return cast(list[Pending], found)

        memory.waiting_named = at_once  # type: ignore[method-assign]

    await asyncio.gather(named(first, group), named(second, group))

    assert reads == 2
    assert validated_vins(first_sent, second_sent) == Counter(b.vin for b in builds)


async def test_partitions_handed_over_have_their_waiting_records_decided_against_the_tables_then(
    specimen: tuple[Approval, BuildRecord],  # noqa: F811
    schema: IviSchema,
) -> None:
    """The second instance dies; an approval comes while nobody holds its partitions; the first takes them."""
    approval, build = specimen
    builds = vehicles(build)
    rejected = next(
        vin_of(build, f"{n:06d}")
        for n in range(400, 500)
        if partition_of(vin_of(build, f"{n:06d}").vin, PARTITIONS) in UPPER
    )  # on the second's partitions: only the hand-over decides it
    store = AtOnce([Pending(b, State.BLOCKED) for b in builds] + [Pending(rejected, State.BLOCKED, "R. Eve")])
    (first, first_sent), (_second, second_sent) = await two_instances(store, [], schema)

    await first.take_approval(approval)  # the second is gone: its records wait
    await first.settle_approvals()
    upper = {b.vin for b in builds if partition_of(b.vin, PARTITIONS) in UPPER}
    assert {b.vin for b in builds if store.records[b.vin].state is State.BLOCKED} == upper
    scans = store.scans

    await holding(cast(HeldPartitions, first.ownership), LOWER | UPPER)  # the group gives it all twelve

    assert validated_vins(first_sent, second_sent) == Counter(b.vin for b in builds)  # each once
    assert decided(first_sent, State.VALIDATED) == {b.vin for b in builds}
    assert store.records[rejected.vin].state is State.BLOCKED  # a reviewer's rejection stands
    assert store.scans == scans + 1  # one read of the waiting records for the partitions handed over
    assert second_sent.statuses == []

    await holding(cast(HeldPartitions, first.ownership), LOWER | UPPER)  # a rebalance that moves nothing
    assert store.scans == scans + 1  # nothing newly held: nothing read


async def test_a_hand_over_waits_until_the_tables_are_read_to_their_end(
    specimen: tuple[Approval, BuildRecord],  # noqa: F811
    schema: IviSchema,
) -> None:
    approval, build = specimen
    waiting = vin_of(build, "000321")
    store = MemoryPending([Pending(waiting, State.BLOCKED)])
    validation, sent, held = instance(store, [], schema)
    order: list[str] = []

    async def tables_read() -> bool:
        order.append("tables read")
        await validation.take_approval(approval)  # the last row of the approvals topic
        return True

    held.ready = tables_read
    await holding(held, range(PARTITIONS))

    assert order == ["tables read"]
    assert sent.states(waiting.vin) == [State.VALIDATED]
