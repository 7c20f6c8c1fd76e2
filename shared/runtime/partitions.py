"""Which partitions of a consumer group's topic this process holds, and on which partition a key falls.

Validation keeps tables every instance reads whole (the approvals, the
policies, the master data) and decides again the records waiting on a row that
changes. With two instances both would decide each record and both publish
it. ``HeldPartitions`` tells an instance which records are its own: those whose
VIN falls on a partition of the stage's VIN-keyed input that its consumer holds
now (``holds``). A VIN's partition is found the way the producers place it,
with aiokafka's default partitioner (``partition_of``).

It is the group subscription's rebalance listener. When partitions come to
the instance (its start, or another instance left or joined), it waits until
the instance's tables are read to their end (``ready``), then hands the newly
held partitions to each ``on_assigned`` callback: the records waiting there
are decided again, so that a change that came while nobody held a partition
is not lost. The consumer fetches nothing of the group's topic meanwhile.

Between a revocation and the next assignment the instance keeps the partitions
it held (a rebalance revokes all of them first, and most come back): a change
in that gap is decided by it, not by no one. At worst a record on a partition
that moves is decided by both instances during the rebalance; never by none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.partitioner import DefaultPartitioner

log = logging.getLogger(__name__)

HandOver = Callable[[frozenset[int]], Awaitable[None]]

_PARTITIONER = DefaultPartitioner()


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``partitions`` that a record keyed ``key`` (UTF-8) goes to from the stage's producers.

    aiokafka's default partitioner (murmur2 of the key bytes, as Java's), the
    one every producer of the product uses (``shared.kafka.make_producer``).
    """
    if partitions < 1:
        raise ValueError(f"partitions: a topic has at least one, not {partitions}")
    return int(_PARTITIONER(key.encode(), list(range(partitions)), []))


class HeldPartitions(ConsumerRebalanceListener):
    """The partitions of ``topic`` this process's group consumer holds (module docstring)."""

    def __init__(self, topic: str, *, ready: Callable[[], Awaitable[object]] | None = None) -> None:
        self.topic = topic
        self.ready = ready  # awaited before a hand-over: the tables read to their end
        self.on_assigned: list[HandOver] = []
        self.consumer: AIOKafkaConsumer | None = None  # set by the consumer loop that subscribes with it
        self.held: frozenset[int] = frozenset()
        self.count: int | None = None  # the topic's partitions, as the consumer's metadata had them

    def holds(self, key: str) -> bool:
        """Whether the records keyed ``key`` come to this process now (none before its first assignment)."""
        return self.among(key, self.held) if self.held else False

    def among(self, key: str, partitions: Collection[int]) -> bool:
        """Whether records keyed ``key`` fall on one of ``partitions``.

        True for every key while the topic's size is unknown (its metadata not
        had at the assignment): a record then decided twice, never by no one.
        """
        return self.count is None or partition_of(key, self.count) in partitions

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None  # kept until the next assignment says otherwise (module docstring)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        mine = frozenset(tp.partition for tp in assigned if tp.topic == self.topic)
        newly = mine - self.held
        known = None if self.consumer is None else self.consumer.partitions_for_topic(self.topic)
        self.count = len(known) if known else self.count
        self.held = mine
        if not newly:
            return
        if self.count is None:
            log.warning("%s: its partitions are not known; every waiting record is taken as held", self.topic)
        log.info(
            "%s: partitions %s newly held; their waiting records decided again", self.topic, sorted(newly)
        )
        if self.ready is not None:
            try:
                await self.ready()
            except Exception:  # the hand-over goes on: a row read later is decided by its own handler
                log.exception("%s: the tables were not read to their end before the hand-over", self.topic)
        for hand_over in self.on_assigned:
            await hand_over(newly)
