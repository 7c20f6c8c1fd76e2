"""A FastStream subscriber and publisher round trip through the real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaMessage

from shared.contracts import Finding, Owner, Severity
from shared.messaging import SCHEMA_VERSION_HEADER, make_broker, publish, subscriber_options
from shared.settings import CocSettings

pytestmark = pytest.mark.integration

FINDING = Finding(
    code="TEST",
    path="CocDataGroup/VehicleIdentificationNumber",
    message="m",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)


async def committed_offset(settings: CocSettings, group: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
    finally:
        await admin.close()


async def eventually_committed(settings: CocSettings, group: str, topic: str, expected: int) -> int:
    """The group's committed offset once it reaches ``expected`` (the ack follows the handler)."""
    for _ in range(50):
        offset = await committed_offset(settings, group, topic)
        if offset >= expected:
            return offset
        await asyncio.sleep(0.2)
    return offset


async def test_published_contract_arrives_with_key_correlation_id_and_headers(
    settings: CocSettings, unique: str
) -> None:
    topic, group = f"test.roundtrip.{unique}", f"test-group-{unique}"
    broker = make_broker(settings, client_id="test")
    received: asyncio.Queue[tuple[Finding, KafkaMessage]] = asyncio.Queue()

    @broker.subscriber(topic, **subscriber_options(group))
    async def handle(body: Finding, msg: KafkaMessage) -> None:
        await received.put((body, msg))

    async with broker:
        await broker.start()
        await publish(broker, FINDING, topic=topic, key="VIN1", correlation_id="VIN1:1", service="test")
        body, msg = await asyncio.wait_for(received.get(), timeout=60)
        committed = await eventually_committed(settings, group, topic, 1)

    assert body == FINDING
    assert msg.raw_message.key == b"VIN1"  # type: ignore[union-attr]
    assert msg.correlation_id == "VIN1:1"
    assert msg.headers[SCHEMA_VERSION_HEADER] == "1"
    assert committed == 1


async def test_message_whose_handler_fails_is_delivered_again_and_committed_only_after(
    settings: CocSettings, unique: str
) -> None:
    topic, group = f"test.redeliver.{unique}", f"test-group-{unique}"
    broker = make_broker(settings, client_id="test")
    attempts: list[int] = []
    done = asyncio.Event()

    @broker.subscriber(topic, **subscriber_options(group))
    async def handle(body: Finding) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database away")  # a transient fault
        done.set()

    async with broker:
        await broker.start()
        await publish(broker, FINDING, topic=topic, key="VIN2", correlation_id="VIN2:1", service="test")
        await asyncio.wait_for(done.wait(), timeout=60)
        committed = await eventually_committed(settings, group, topic, 1)

    assert len(attempts) == 2
    assert committed == 1
