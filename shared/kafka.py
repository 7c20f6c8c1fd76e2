"""Kafka plumbing: the producer, the envelope, the contracts' parsing, the topics, reading a topic whole.

Conventions (design.md, "Topics" and "Delivery and failure"):
- the key is the VIN (approvals: the approval key), so one vehicle stays on one partition;
- the value is the JSON of a pydantic contract carrying ``schema_version``;
- the record id travels in the ``correlation_id`` header (as FastStream's
  publishers put it), the schema version and the trace context as headers;
- producers wait for all in-sync replicas; consumers commit only after the
  handler finished, and a handler that raises has its message delivered again;
- topics are made before a service subscribes, not left to broker auto-creation:
  the approvals topic must be compacted, and every topic needs enough partitions
  for its stage to scale out (signing first).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.contracts.base import reason_of
from shared.settings import CocSettings

M = TypeVar("M", bound=BaseModel)
Record: TypeAlias = ConsumerRecord[bytes, bytes]

SCHEMA_VERSION_HEADER = "coc-schema-version"
SERVICE_HEADER = "coc-service"


def make_broker(settings: CocSettings, *, client_id: str) -> KafkaBroker:
    """A FastStream broker holding a stage's declarations: the topics it reads and writes, with their contracts.

    It gives the AsyncAPI document (``Stage.asyncapi``) and is never started: the
    stage sends through its own producer (``make_producer``) and consumes through
    ``shared.runtime.consumer``, both on aiokafka's public API.
    """
    return KafkaBroker(settings.kafka_bootstrap, client_id=client_id)


def consumer_options(settings: CocSettings) -> dict[str, Any]:
    """How every consumer of a stage reaches the broker."""
    return {"bootstrap_servers": settings.kafka_bootstrap}


def make_producer(settings: CocSettings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (started by the caller).

    Not the idempotent producer: with several consumers of one process
    publishing at once, aiokafka's idempotent producer was seen to fail with
    OutOfOrderSequenceNumber after a broker restart, an error it never
    recovers from, which stalls the stage for good. A retried send may
    instead arrive twice; every stage deduplicates (record ids as keys,
    deterministic documents), so a duplicate changes nothing.

    Sends wait up to ``kafka_linger_ms`` to travel with others in one request:
    a batch's sends then reach the broker in a few requests instead of one each.
    A partition's batch holds up to ``kafka_batch_bytes``: at aiokafka's default of
    16 KiB a rendered or signed certificate (17-21 KB) was a batch of its own, which
    cost the producer 0.5 ms and the broker 0.4 ms of CPU per message (0.1 and 0.1
    with 1 MiB batches, measured on this stack).
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_batch_bytes,
    )


def envelope_headers(model: BaseModel, *, service: str) -> dict[str, str]:
    """Headers of a published contract: its schema version and the publishing service."""
    version = getattr(model, "schema_version", 1)
    return {SCHEMA_VERSION_HEADER: str(version), SERVICE_HEADER: service}


def key_text(record: Record) -> str:
    return record.key.decode("utf-8", "replace").strip() if record.key else ""


class ContractError(ValueError):
    """A message or request body broke its contract; the text names each field and why."""


def parse_as(model: type[M], body: bytes) -> M:
    """Parse a message body with its contract; raises ContractError naming each bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ContractError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {reason_of(err)}")
    return "; ".join(parts)


def wanted_topics(settings: CocSettings) -> list[NewTopic]:
    # Small compacted tables every instance reads whole: one partition keeps them in one order.
    single_partition = {topics.APPROVALS, topics.POLICIES, topics.MASTERDATA}
    names = [*topics.ALL, *(topics.dlq(t) for t in topics.ALL)]
    configs = {"min.insync.replicas": str(settings.topic_min_insync)}
    return [
        NewTopic(
            name,
            num_partitions=1 if name in single_partition else settings.topic_partitions,
            replication_factor=settings.topic_replication,
            topic_configs={**configs, "cleanup.policy": "compact"} if name in topics.COMPACTED else configs,
        )
        for name in names
    ]


async def ensure_topics(settings: CocSettings, extra: Sequence[str] = ()) -> list[str]:
    """Create the pipeline's topics, and ``extra`` ones (as plain topics), that do not exist yet; return those made."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = wanted_topics(settings)
        known = {t.name for t in wanted}
        wanted += [plain_topic(settings, name) for name in dict.fromkeys(extra) if name not in known]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            # another process may make them between the listing and the creation
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


def plain_topic(settings: CocSettings, name: str) -> NewTopic:
    return NewTopic(
        name,
        num_partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication,
        topic_configs={"min.insync.replicas": str(settings.topic_min_insync)},
    )


async def read_to_end(settings: CocSettings, topic: str) -> list[Record]:
    """Every record of ``topic`` from its beginning up to its end as of now, in offset order per partition.

    For a compacted topic a service must know whole before it starts (the
    approvals): no consumer group, nothing committed. The partitions come from
    the admin client: a consumer's ``topics()`` fetches metadata it does not
    keep, so its ``partitions_for_topic`` would still know none.
    """
    partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(**consumer_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []
        while await _behind(consumer, ends):
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def read_contracts(settings: CocSettings, topic: str, model: type[M]) -> list[tuple[M, Record]]:
    """Every message of ``topic`` up to its end that keeps ``model``'s contract, with its record.

    Messages that break the contract are left out here: the live subscriber that
    follows reads them too and keeps them in the DLQ with the reason.
    """
    found: list[tuple[M, Record]] = []
    for record in await read_to_end(settings, topic):
        with contextlib.suppress(ValidationError):
            found.append((model.model_validate_json(record.value or b""), record))
    return found


async def partitions_of(settings: CocSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic``; none when it does not exist (it is not created here)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            return []
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
