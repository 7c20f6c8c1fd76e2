"""Kafka plumbing, all of it in one place: the broker, the envelope, the topics, reading a topic whole.

Conventions (design.md, "Topics" and "Delivery and failure"):
- the key is the VIN (approvals: the approval key), so one vehicle stays on one partition;
- the value is the JSON of a pydantic contract carrying ``schema_version``;
- the record id travels as FastStream's correlation id, the schema version and
  the trace context as headers;
- producers wait for all in-sync replicas; consumers commit only after the
  handler finished, and a handler that raises has its message delivered again;
- topics are made before a service subscribes, not left to broker auto-creation:
  the approvals topic must be compacted, and every topic needs enough partitions
  for its stage to scale out (signing first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import chain
from typing import Any, TypeAlias, TypeVar

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.producer import AioKafkaFastProducerImpl
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.settings import CocSettings

M = TypeVar("M", bound=BaseModel)
Record: TypeAlias = ConsumerRecord[bytes, bytes]

SCHEMA_VERSION_HEADER = "coc-schema-version"
SERVICE_HEADER = "coc-service"


def make_broker(settings: CocSettings, *, client_id: str, **options: Any) -> KafkaBroker:
    """A broker whose producer waits for every in-sync replica.

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
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_batch_bytes,
        **options,
    )


def producer_of(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The aiokafka producer a started FastStream broker sends with (its settings: ``make_broker``).

    None when the broker sends through something else (FastStream's in-memory
    test broker, which replaces it). Raises when the broker is not started.
    """
    fast = broker.config.producer
    if not isinstance(fast, AioKafkaFastProducerImpl):
        return None
    try:
        producer = fast._producer.producer
    except Exception:  # its state before start and after stop refuses access
        producer = None
    if not isinstance(producer, AIOKafkaProducer):
        raise RuntimeError("the Kafka broker is not started: nothing can be published yet")
    return producer


def group_options(group_id: str) -> dict[str, Any]:
    """Subscriber options of a stage whose instances share the work in one consumer group.

    Offsets are committed after the handler returns (AckPolicy.NACK_ON_ERROR
    acks on success and rewinds to the message, or each partition of a batch
    to its first record, on an exception), so a process killed mid-handler
    leaves the message to be delivered again. One consumer per process: the
    I/O of different vehicles overlaps inside its batches (``shared.stage``).
    """
    return {
        "group_id": group_id,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
    }


def held_group_options(group_id: str, listener: ConsumerRebalanceListener) -> dict[str, Any]:
    """Subscriber options of a group whose handler commits for itself (``Stage.consume_held``).

    Nothing is committed after the handler: it holds what it read across
    batches and commits the offsets once that is written. ``listener`` hears
    of partitions taken away, whose held messages are then dropped (the next
    owner reads them from the last commit).
    """
    return {
        "group_id": group_id,
        "ack_policy": AckPolicy.MANUAL,
        "auto_offset_reset": "earliest",
        "listener": listener,
    }


async def rewind(consumer: AIOKafkaConsumer) -> None:
    """Move every assigned partition back to its committed offset (its start when none was committed).

    Not ``seek_to_committed``: it leaves a partition never committed on where it is.
    """
    for partition in consumer.assignment():
        committed = await consumer.committed(partition)
        if committed is None:
            await consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)


# What a gathering fetch waits for at most: about 1,700 status events, far more than a second of
# them at a line's pace, so the wait ends it, not the size.
GATHER_BYTES = 1 << 20


def gather_options(gather_ms: int) -> dict[str, Any]:
    """Subscriber options letting the broker hold a fetch up to ``gather_ms`` to gather records (0: off)."""
    return {
        "fetch_min_bytes": GATHER_BYTES if gather_ms else 1,
        "fetch_max_wait_ms": gather_ms or 500,  # 500: the consumer's own default
    }


# An empty poll that came back this much faster than its wait found no partition to wait on
# (a rebalance in progress): the loop pauses this long before it asks again, so it cannot spin.
EMPTY_POLL_PAUSE_S = 0.05


def wait_for_records(
    subscriber: Any,
    poll_ms: int,
    behind: Callable[[int], None] | None = None,
    quiet: Callable[[AIOKafkaConsumer], Awaitable[None]] | None = None,
) -> None:
    """Make a FastStream batch subscriber wait for records instead of sleeping between polls.

    FastStream's batch subscriber asks the consumer for what came within its
    ``batch_timeout_ms`` and, when nothing came, sleeps as long again. With a
    short wait an idle stage wakes 25 times a second per topic it reads; with
    a long one a record arriving during the sleep waits for it, at every
    stage it passes. The consumer's ``getmany`` returns as soon as a record is
    fetched, so here each poll waits up to ``poll_ms`` and nothing sleeps.

    ``behind`` is told after each poll how many records wait on the broker
    for this subscription (``events_behind``); ``quiet`` is awaited after a
    poll that waited its whole time and brought nothing (the handler is not
    called for an empty batch).
    """
    max_records = subscriber.max_records
    taken: dict[Any, int] = {}  # per partition, the offset after the last record taken

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[Record, ...]:
        began = time.monotonic()
        batches = await consumer.getmany(timeout_ms=poll_ms, max_records=max_records)
        if behind is not None:
            for partition, records in batches.items():
                if records:
                    taken[partition] = records[-1].offset + 1
            behind(events_behind(consumer, taken))
        if batches:
            return tuple(chain.from_iterable(batches.values()))
        if time.monotonic() - began < poll_ms / 2000:
            await asyncio.sleep(EMPTY_POLL_PAUSE_S)
        elif quiet is not None:
            await quiet(consumer)
        return ()

    subscriber.get_msg = get_msg


def events_behind(consumer: AIOKafkaConsumer, taken: dict[Any, int]) -> int:
    """Records on the broker not yet taken, by the high watermarks of the consumer's last fetches.

    Counted for the partitions assigned that have given a record since this
    process started (a partition not yet read adds nothing: a lower bound
    until each has been read once).
    """
    total = 0
    for partition in consumer.assignment():
        end, after = consumer.highwater(partition), taken.get(partition)
        if end is not None and after is not None:
            total += max(0, end - after)
    return total


def broadcast_options(*, from_start: bool = True) -> dict[str, Any]:
    """Subscriber options of a topic every instance reads for itself: no group, no commits.

    From the beginning for a table each instance keeps whole (the approvals);
    from the end for a live feed (the workspace's view of the status topic).
    """
    start = "earliest" if from_start else "latest"
    return {"group_id": None, "auto_offset_reset": start, "ack_policy": AckPolicy.MANUAL}


def envelope_headers(model: BaseModel, *, service: str) -> dict[str, str]:
    """Headers of a published contract: its schema version and the publishing service."""
    version = getattr(model, "schema_version", 1)
    return {SCHEMA_VERSION_HEADER: str(version), SERVICE_HEADER: service}


async def raw_records(msg: StreamMessage[Any]) -> tuple[Record, ...]:
    """Decoder that hands the handler the Kafka records as they came (one, or a batch).

    Every stage parses its own input with its pydantic contract, so a message
    that breaks the contract becomes a dead letter with a reason instead of a
    decoding error that would be redelivered for ever. The handler takes the
    records as its only parameter, typed ``Any``: a ``KafkaMessage`` parameter
    is resolved from FastStream's context by a call on a worker thread, once per
    message or batch, and a typed one is validated again by FastDepends.
    """
    records = records_of(msg)
    # FastStream's copies of the batch's values and headers: the records hold them, ``release`` drops them.
    msg.body, msg.batch_headers = b"", []
    return records


def release(records: Sequence[Record]) -> None:
    """Drop the values and headers of records whose batch is handled (or rewound: the broker has them).

    FastStream keeps the message it handed a handler in a context variable, and
    every task, callback and timer made meanwhile (its offset commit's among them)
    keeps a copy of that context; a timer cancelled early stays in the event loop
    until its time comes. So the message, and every record of its batch, outlived
    the batch by up to 40 s: counted with ``gc`` in archive during a 20,000-build
    run, 2,000-6,000 records (40-125 MB of signed certificates) were alive at
    once and it peaked at 236 MB; in status, with 2,000 events per batch, 24,000
    records with their header copies. The cause, seen by listing the event loop's
    timers in status: the offset commit FastStream makes after the handler waits
    under aiokafka's 40 s request timeout, and that timer, cancelled when the
    answer comes, stays in the loop until its time with the batch in its context
    (15-60 such timers at a time). Kept: topic, partition, offset and key, what a
    rewind needs.
    """
    for record in records:
        record.value = None
        record.headers = ()


def records_of(msg: StreamMessage[Any]) -> tuple[Record, ...]:
    """The Kafka records behind a message: one, or the whole batch."""
    raw = msg.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


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
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def wanted_topics(settings: CocSettings) -> list[NewTopic]:
    # Small compacted tables every instance reads whole: one partition keeps them in one order.
    single_partition = {topics.APPROVALS, topics.POLICIES}
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


async def ensure_topics(settings: CocSettings) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted_topics(settings) if t.name not in existing]
        if missing:
            # another process may make them between the listing and the creation
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


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
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
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
