"""Which partitions a group consumer holds, the hand-over of those that come to it, and tables read to their end.

``partition_of`` against the broker's own placement is proven in
tests/integration/shared/test_partitions.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from shared import topics
from shared.kafka import Record
from shared.runtime.consumer import ConsumerLoop
from shared.runtime.partitions import HeldPartitions, partition_of
from shared.runtime.table import TableReader
from shared.settings import ServiceSettings
from shared.stage import Stage
from tests.unit.shared.runtime_fakes import Recording, record

pytestmark = pytest.mark.unit
TOPIC = topics.ACCEPTED


class Metadata:
    """The consumer as ``HeldPartitions`` asks it: the topic's partitions (None: not known)."""

    def __init__(self, partitions: int | None) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None if self.partitions is None else set(range(self.partitions))


def held_of(partitions: int | None = 12) -> HeldPartitions:
    held = HeldPartitions(TOPIC)
    held.consumer = cast(AIOKafkaConsumer, Metadata(partitions))
    return held


def tps(*partitions: int) -> set[TopicPartition]:
    return {TopicPartition(TOPIC, p) for p in partitions}


def test_a_key_falls_on_one_partition_always_and_keys_spread_over_all() -> None:
    vins = [f"WDB9634031L{n:06d}" for n in range(600)]
    assert [partition_of(v, 12) for v in vins] == [partition_of(v, 12) for v in vins]
    assert {partition_of(v, 12) for v in vins} == set(range(12))
    assert {partition_of(v, 1) for v in vins} == {0}
    with pytest.raises(ValueError, match="partitions"):
        partition_of(vins[0], 0)


async def test_only_newly_held_partitions_are_handed_over_after_the_tables_are_read() -> None:
    held, order = held_of(), list[object]()

    async def ready() -> bool:
        order.append("ready")
        return True

    async def hand_over(partitions: frozenset[int]) -> None:
        order.append(sorted(partitions))

    held.ready = ready
    held.on_assigned.append(hand_over)
    vin = next(f"VIN{n:014d}" for n in range(100) if partition_of(f"VIN{n:014d}", 12) == 7)
    assert not held.holds(vin)  # before the first assignment: nothing held

    await held.on_partitions_assigned(tps(0, 1, 7))
    assert order == ["ready", [0, 1, 7]] and held.holds(vin)
    await held.on_partitions_revoked(tps(0, 1, 7))
    assert held.holds(vin)  # kept through the rebalance, until the next assignment says otherwise
    await held.on_partitions_assigned(tps(0, 1, 2))  # 7 went to another instance, 2 came
    assert order == ["ready", [0, 1, 7], "ready", [2]] and not held.holds(vin)
    await held.on_partitions_assigned(tps(0, 1, 2))  # nothing new: nothing handed over
    assert len(order) == 4
    assert held.among(vin, {7}) and not held.among(vin, {0, 1, 2})


async def test_a_topic_whose_size_is_not_known_takes_every_key_as_held_rather_than_none() -> None:
    held, handed = held_of(None), []

    async def hand_over(partitions: frozenset[int]) -> None:
        handed.append(partitions)

    held.on_assigned.append(hand_over)
    await held.on_partitions_assigned(tps(3))
    assert handed == [frozenset({3})]
    assert held.holds("ANYVIN00000000000") and held.among("ANYVIN00000000000", {3})


class TableConsumer:
    """A table reader's consumer: its assignment, where it ends and its position after each batch."""

    def __init__(self) -> None:
        self.part = TopicPartition("coc.approvals.v1", 0)
        self.at, self.end = 0, 3

    def assignment(self) -> set[TopicPartition]:
        return {self.part}

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self.end)

    async def position(self, partition: TopicPartition) -> int:
        return self.at


class Row(BaseModel):
    name: str


async def test_tables_are_read_to_their_end_once_every_row_as_of_now_is_handled() -> None:
    stage = Stage("test", ServiceSettings())
    stage.emitter.outbound = Recording()
    rows: list[str] = []

    async def keep(row: Row) -> None:
        rows.append(row.name)

    stage.consume("coc.approvals.v1", Row, keep, broadcast=True, broken_state=None)
    (loop,) = stage.loops
    consumer = TableConsumer()
    loop.consumer = cast(AIOKafkaConsumer, consumer)
    reader = cast(TableReader[Row], loop.mode)

    assert not await stage.tables_read(within_s=0.05)  # three rows on the topic, none handled

    async def handled_later(loop: ConsumerLoop) -> None:
        await asyncio.sleep(0.05)
        batch: list[Record] = [
            record("coc.approvals.v1", b'{"name": "%d"}' % n, key=b"k", offset=n) for n in range(3)
        ]
        consumer.at = 3  # the consumer's position once it gave the batch
        await reader.handle(batch, loop)

    handling = asyncio.create_task(handled_later(loop))
    assert await stage.tables_read(within_s=5)
    await handling
    assert rows == ["0", "1", "2"]
    consumer.end = 4  # a row more; a quiet poll notes where the reader is, still behind
    await reader.quiet(loop)
    assert not await stage.tables_read(within_s=0.05)


async def test_partitions_are_handed_over_even_when_the_tables_could_not_be_read_to_their_end() -> None:
    held, handed = held_of(), list[frozenset[int]]()

    async def broker_away() -> bool:
        raise ConnectionError("the broker is away")

    async def hand_over(partitions: frozenset[int]) -> None:
        handed.append(partitions)

    held.ready = broker_away
    held.on_assigned.append(hand_over)
    await held.on_partitions_assigned(tps(4, 5))
    assert handed == [frozenset({4, 5})]  # decided against the tables as they are, not lost
