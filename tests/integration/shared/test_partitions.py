"""On the real broker: a VIN's partition as ``partition_of`` computes it is where the producers put it,
and each of two stage instances in one group holds the VINs the broker gives it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from shared import topics
from shared.kafka import client_options, partitions_of
from shared.runtime.partitions import HeldPartitions, partition_of
from shared.settings import CocSettings, ServiceSettings
from shared.stage import Stage
from tests.conftest import eventually

pytestmark = pytest.mark.integration
VINS = [f"WDB9634031L{n:06d}" for n in range(240)]
SAMPLE = (
    500  # records of each partition of coc.records.accepted.v1 compared at most (whatever ran on the stack)
)


class Vehicle(BaseModel):
    vin: str


async def records_of(
    settings: CocSettings, topic: str, partitions: list[int], most: int
) -> list[tuple[bytes, int]]:
    """The last ``most`` keyed records (at most) of each partition of ``topic``, as (key, partition)."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(parts)
        starts, ends = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
        for part in parts:
            consumer.seek(part, max(starts[part], ends[part] - most))
        found: list[tuple[bytes, int]] = []

        async def read() -> bool:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
                found.extend((r.key, r.partition) for r in batch if r.key is not None)
            return all([await consumer.position(p) >= ends[p] for p in parts])

        await eventually(
            read, within_s=60, every_s=0, what=f"the last {most} records of each partition of {topic}"
        )
        return found
    finally:
        await consumer.stop()


@pytest.fixture
async def vehicles_topic(settings: CocSettings, unique: str) -> AsyncIterator[str]:
    """A topic of this test with as many partitions as coc.records.accepted.v1, deleted afterwards."""
    topic = f"test-partitions-{unique}"
    yield topic
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def test_the_partition_computed_for_a_vin_is_the_one_the_broker_holds_it_in(
    settings: CocSettings,
) -> None:
    """coc.records.accepted.v1 as intake filled it on the shared stack (empty: nothing to compare here)."""
    partitions = await partitions_of(settings, topics.ACCEPTED)
    assert partitions == list(range(len(partitions))) and partitions
    found = await records_of(settings, topics.ACCEPTED, partitions, SAMPLE)
    wrong = [(key, at) for key, at in found if partition_of(key.decode(), len(partitions)) != at]
    assert wrong == [], f"{len(wrong)} of {len(found)} records are not where partition_of puts them"


async def test_two_instances_in_one_group_each_hold_the_vins_the_broker_gives_them(
    settings: CocSettings, vehicles_topic: str
) -> None:
    count = len(await partitions_of(settings, topics.ACCEPTED))
    base = ServiceSettings(
        kafka_bootstrap=settings.kafka_bootstrap, topic_partitions=count, consume_wait_ms=200
    )
    got: list[list[str]] = [[], []]
    stages, helds = [], []
    for n in range(2):
        stage, held = Stage("test", base), HeldPartitions(vehicles_topic)
        stage.publisher(vehicles_topic, Vehicle)

        async def keep(vehicle: Vehicle, into: list[str] = got[n]) -> None:
            into.append(vehicle.vin)

        stage.consume(vehicles_topic, Vehicle, keep, broken_state=None, held=held)
        stages.append(stage)
        helds.append(held)
    try:
        for stage in stages:
            await stage.start()
        await eventually(
            lambda: all(held.held for held in helds) and sum(len(h.held) for h in helds) == count,
            within_s=60,
            what="both instances holding partitions",
        )
        for vin in VINS:  # as the stages publish: the emitter, keyed by VIN
            await stages[0].emitter.send(vehicles_topic, Vehicle(vin=vin), key=vin, correlation_id=vin)
        await eventually(lambda: len(got[0]) + len(got[1]) >= len(VINS), within_s=60, what="every VIN read")
    finally:
        for stage in stages:
            await stage.stop()

    assert sorted(got[0] + got[1]) == sorted(VINS)
    assert helds[0].held.isdisjoint(helds[1].held)
    assert [held.count for held in helds] == [count, count]  # each knew the topic's size from its consumer
    for held, vins in zip(helds, got, strict=True):
        assert vins and all(held.holds(vin) for vin in vins)
    placed = await records_of(settings, vehicles_topic, list(range(count)), len(VINS))
    assert {(key.decode(), at) for key, at in placed} == {(vin, partition_of(vin, count)) for vin in VINS}
