"""Reading the compacted approvals topic from the beginning, before any record is validated."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from shared import topics
from shared.contracts import Approval
from shared.settings import CocSettings

log = logging.getLogger(__name__)


async def read_all(settings: CocSettings) -> list[Approval]:
    """Every approval on the topic up to its current end, newest per key last.

    Unusable approvals are skipped here; the live subscriber that follows sends
    them to the DLQ with the reason.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topics.APPROVALS not in await consumer.topics():  # also fetches the metadata
            return []
        numbers = sorted(consumer.partitions_for_topic(topics.APPROVALS) or ())
        partitions = [TopicPartition(topics.APPROVALS, p) for p in numbers]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        approvals: list[Approval] = []
        while await behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    try:
                        approvals.append(Approval.model_validate_json(record.value or b""))
                    except ValidationError:
                        log.warning("skipping an unusable approval at offset %s", record.offset)
        return approvals
    finally:
        await consumer.stop()


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
