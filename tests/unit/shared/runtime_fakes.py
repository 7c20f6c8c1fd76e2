"""In-memory stand-ins for the stage runtime's unit tests: records as aiokafka makes them, a recording producer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from shared.kafka import Record
from shared.runtime.partitions import HeldPartitions


def record(
    topic: str, value: bytes | None, *, key: bytes | None = None, partition: int = 0, offset: int = 0
) -> Record:
    """A consumed record, as aiokafka hands it over."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=(),
    )


@dataclass
class Recording:
    """An ``Outbound`` that keeps what is sent (topic, value, key, headers); every send acknowledged at once."""

    sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    fail_with: BaseException | None = None  # the acknowledgement of every send fails with this

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, value, key, headers))
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_with is None:
            acknowledged.set_result(None)
        else:
            acknowledged.set_exception(self.fail_with)
        return acknowledged

    def models(self, topic: str, model: type[BaseModel]) -> list[Any]:
        return [model.model_validate_json(value) for sent_to, value, _, _ in self.sent if sent_to == topic]


class TopicMetadata:
    """What ``HeldPartitions`` asks of its consumer at an assignment: the number of partitions of its topic."""

    def __init__(self, topic: str, partitions: int) -> None:
        self.topic, self.partitions = topic, partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        assert topic == self.topic
        return set(range(self.partitions))


async def holding(held: HeldPartitions, partitions: Iterable[int]) -> None:
    """The group assigns ``partitions`` of the listener's topic to its instance (after revoking what it held)."""
    await held.on_partitions_revoked({TopicPartition(held.topic, p) for p in held.held})
    await held.on_partitions_assigned({TopicPartition(held.topic, p) for p in partitions})
