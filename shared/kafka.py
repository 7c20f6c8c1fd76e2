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

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from shared import topics
from shared.contracts.base import reason_of
from shared.settings import CocSettings

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Record: TypeAlias = ConsumerRecord[bytes, bytes]

CONSUMER_METADATA_MAX_AGE_MS = 5000  # see consumer_options
# Reading a table topic whole (``read_to_end``): an attempt that makes no progress for this
# long is given up and made again with a new consumer, at most this many times.
TABLE_STALL_S = 10.0
TABLE_ATTEMPTS = 4
TABLE_CLOSE_S = 2.0  # see _close
METADATA_RETRY_S = 0.5  # see partitions_of

SCHEMA_VERSION_HEADER = "coc-schema-version"
SERVICE_HEADER = "coc-service"
# Written by `coc stack up --brokers 3` into the state folder: how tools (coc, bench, devkit, tests)
# reach the local cluster (its addresses, TLS CA, the admin principal and its password file).
LOCAL_CLUSTER_FILE = Path("kafka-cluster") / "client.json"


def local_cluster(settings: CocSettings) -> CocSettings:
    """``settings``, pointed at the local cluster as its admin when the stack runs one and nothing else is set.

    Only when no security is configured (no ``COC_KAFKA_SECURITY_PROTOCOL``): a
    service of the cluster gets its own principal in its environment, and a
    company's cluster is configured explicitly, so neither is touched.
    """
    if "kafka_security_protocol" in settings.model_fields_set:
        return settings
    try:
        found = json.loads((settings.state_dir / LOCAL_CLUSTER_FILE).read_text())
        update: dict[str, Any] = {
            "kafka_security_protocol": found["security_protocol"],
            "kafka_sasl_mechanism": found["sasl_mechanism"],
            "kafka_username": found["username"],
            "kafka_password_file": Path(found["password_file"]),
            "kafka_ca_file": Path(found["ca_file"]),
            "topic_replication": int(found["topic_replication"]),
            "topic_min_insync": int(found["topic_min_insync"]),
        }
        if settings.kafka_bootstrap == str(found["bootstrap"]).split(",")[0]:
            update["kafka_bootstrap"] = str(found["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return settings
    return settings.model_copy(update=update)


def client_options(settings: CocSettings) -> dict[str, Any]:
    """The address and security of every aiokafka client (producer, consumer, admin), from settings.

    PLAINTEXT, SASL_SSL (user and password file) or SSL (mutual TLS with a client
    certificate and key); TLS checks the broker's certificate against
    ``kafka_ca_file`` (else the system's CAs) and its host name.
    """
    settings = local_cluster(settings)
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return options
    options["security_protocol"] = protocol
    options["ssl_context"] = create_ssl_context(
        cafile=settings.kafka_ca_file, certfile=settings.kafka_cert_file, keyfile=settings.kafka_key_file
    )
    if protocol == "SASL_SSL":
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = read_secret(settings.kafka_password_file, "kafka_password_file")
    return options


def options_for(bootstrap: str) -> dict[str, Any]:
    """``client_options`` for a tool that is given only the address: the security comes from its settings
    (``COC_KAFKA_...``), else from the local cluster's file in the state folder."""
    return client_options(CocSettings(kafka_bootstrap=bootstrap))


def read_secret(path: Path | None, setting: str) -> str:
    """The first line of a secret's file; the error names the setting, never the secret."""
    if path is None:
        raise ValueError(f"{setting} is not set: SASL needs the password's file")
    try:
        secret = path.read_text().splitlines()[0].strip() if path.stat().st_size <= 4096 else ""
    except (OSError, IndexError, UnicodeDecodeError):
        secret = ""
    if not secret:
        raise ValueError(f"{setting}: {path} cannot be read or holds no password on its first line")
    return secret


def idempotent(settings: CocSettings) -> bool:
    """Whether producers are idempotent (``kafka_idempotence``, on unless turned off)."""
    return settings.kafka_idempotence


def make_broker(settings: CocSettings, *, client_id: str) -> KafkaBroker:
    """A FastStream broker holding a stage's declarations: the topics it reads and writes, with their contracts.

    It gives the AsyncAPI document (``Stage.asyncapi``) and is never started: the
    stage sends through its own producer (``make_producer``) and consumes through
    ``shared.runtime.consumer``, both on aiokafka's public API. Never connecting,
    it is given no credentials (``client_options`` gives them to the clients that do).
    """
    return KafkaBroker(settings.kafka_bootstrap, client_id=client_id)


def consumer_options(settings: CocSettings) -> dict[str, Any]:
    """How every consumer of a stage reaches the broker, and how soon it learns of a new leader.

    aiokafka 0.14 asks a partition's leader for the offset to start from (its
    committed one, the earliest or the latest) and, answered NotLeaderForPartition,
    asks the same broker again every 0.1 s without refreshing its metadata
    (``Fetcher._update_fetch_positions``), so until the metadata is renewed on its own
    after ``metadata_max_age_ms`` (five minutes by default). After a broker was killed
    on the cluster, validation asked its old leader for four minutes before it read a
    record. Metadata at most ``CONSUMER_METADATA_MAX_AGE_MS`` old bounds that to seconds.
    """
    return {**client_options(settings), "metadata_max_age_ms": CONSUMER_METADATA_MAX_AGE_MS}


def make_producer(settings: CocSettings, *, client_id: str) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (started by the caller).

    Idempotent (``kafka_idempotence``), so a retried send does not arrive
    twice. It was off until issue 29: aiokafka's idempotent producer had once
    been seen to fail with OutOfOrderSequenceNumber after a broker restart, an
    error it never recovers from. The broker-kill test (SIGKILL of the single
    broker mid-run, test_pipeline_faults) passed with it on at 600 and twice at
    2,000 builds on 2026-12-07, and the cluster runs with it. Without it
    (COC_KAFKA_IDEMPOTENCE=false) a retried send may arrive twice; every stage
    deduplicates (record ids as keys, deterministic documents), so a duplicate
    changes nothing.

    Sends wait up to ``kafka_linger_ms`` to travel with others in one request:
    a batch's sends then reach the broker in a few requests instead of one each.
    A partition's batch holds up to ``kafka_batch_bytes``: at aiokafka's default of
    16 KiB a rendered or signed certificate (17-21 KB) was a batch of its own, which
    cost the producer 0.5 ms and the broker 0.4 ms of CPU per message (0.1 and 0.1
    with 1 MiB batches, measured on this stack).
    """
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotent(settings),
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_batch_bytes,
        compression_type=None if settings.kafka_compression == "none" else settings.kafka_compression,
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


def wanted_topics(settings: CocSettings, leaders: Sequence[int] = ()) -> list[NewTopic]:
    """The pipeline's topics and their dead-letter topics, as ``ensure_topics`` makes them.

    With ``leaders`` (the brokers' node ids) each topic's partitions are all led by
    one broker, the topics taking the brokers in turn (see ``placed_on``).
    """
    # Small compacted tables every instance reads whole: one partition keeps them in one order.
    single_partition = {topics.APPROVALS, topics.POLICIES, topics.MASTERDATA}
    names = [*topics.ALL, *(topics.dlq(t) for t in topics.ALL)]
    configs = topic_configs(settings)
    return [
        placed_on(
            name,
            1 if name in single_partition else settings.topic_partitions,
            settings.topic_replication,
            in_turn(leaders, index),
            {**configs, "cleanup.policy": "compact"} if name in topics.COMPACTED else configs,
        )
        for index, name in enumerate(names)
    ]


def in_turn(brokers: Sequence[int], index: int) -> list[int]:
    """``brokers`` starting at the ``index``-th (in a circle); nothing when there are none."""
    if not brokers:
        return []
    start = index % len(brokers)
    return [*brokers[start:], *brokers[:start]]


def placed_on(
    name: str, partitions: int, replication: int, brokers: Sequence[int], configs: dict[str, str]
) -> NewTopic:
    """A topic whose partitions are all led by ``brokers[0]`` and followed by the next ones (else Kafka places them).

    A consumer fetches from each broker that leads one of its partitions, and a
    producer sends to each; with Kafka spreading a topic's partitions over three
    brokers, each of a stage's consumers asked all three. With a topic's partitions
    on one leader (the topics spread over the brokers instead), it asks one
    (``coc stack up --brokers 3``). Replication is unchanged, and a broker's death
    moves its topics' leadership to their followers as before.
    """
    if len(brokers) < replication:
        return NewTopic(
            name, num_partitions=partitions, replication_factor=replication, topic_configs=configs
        )
    replicas = list(brokers[:replication])
    return NewTopic(
        name, -1, -1, replica_assignments={p: replicas for p in range(partitions)}, topic_configs=configs
    )


async def ensure_topics(
    settings: CocSettings, extra: Sequence[str] = (), *, leaders: Sequence[int] = ()
) -> list[str]:
    """Create the pipeline's topics, and ``extra`` ones (as plain topics), that do not exist yet; return those made.

    Nothing with ``kafka_make_topics`` off: the platform (the local cluster's
    ``coc stack up``, a company's topic operator) makes them. ``leaders``: see
    ``wanted_topics``.
    """
    if not settings.kafka_make_topics:
        return []
    settings = local_cluster(settings)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = wanted_topics(settings, leaders)
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
        topic_configs=topic_configs(settings),
    )


def topic_configs(settings: CocSettings) -> dict[str, str]:
    """Every topic's settings: the in-sync replicas a write waits for, and no unclean leader.

    With ``acks=all`` and min.insync.replicas 2 of 3, an acknowledged record is on two
    brokers; an out-of-sync replica never becomes leader (it would drop what it lacks).
    """
    return {"min.insync.replicas": str(settings.topic_min_insync), "unclean.leader.election.enable": "false"}


async def read_to_end(settings: CocSettings, topic: str) -> list[Record]:
    """Every record of ``topic`` from its beginning up to its end as of now, in offset order per partition.

    For a compacted topic a service must know whole before it starts (the
    approvals): no consumer group, nothing committed. The partitions come from
    the admin client: a consumer's ``topics()`` fetches metadata it does not
    keep, so its ``partitions_for_topic`` would still know none.

    Bounded: on the cluster a service's start was seen to stall 30 s on each table
    topic (after broker kills and on a loaded machine), the consumer getting no
    record and no error. An attempt that gets nowhere for ``TABLE_STALL_S`` is
    dropped and made again with a new consumer (``TABLE_ATTEMPTS`` in all, then
    ``TableStalled``), each said in the log.
    """
    for attempt in range(1, TABLE_ATTEMPTS + 1):
        try:
            return await _read_once(settings, topic)
        except TableStalled as stalled:
            if attempt == TABLE_ATTEMPTS:
                raise
            log.warning("%s; reading it again with a new consumer (attempt %d)", stalled, attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


class TableStalled(TimeoutError):
    """Reading a table topic whole made no progress for ``TABLE_STALL_S``."""


async def _read_once(settings: CocSettings, topic: str) -> list[Record]:
    consumer: AIOKafkaConsumer | None = None
    step = "listing its partitions"
    try:
        numbers = await _bounded(partitions_of(settings, topic), topic, step)
        partitions = [TopicPartition(topic, p) for p in numbers]
        if not partitions:
            return []
        consumer = AIOKafkaConsumer(**consumer_options(settings), enable_auto_commit=False)
        step = "starting its consumer"
        await _bounded(consumer.start(), topic, step)
        consumer.assign(partitions)
        step = "asking where it ends"
        await consumer.seek_to_beginning(*partitions)
        ends = await _bounded(consumer.end_offsets(partitions), topic, step)
        records: list[Record] = []
        step, moved = "reading its records", time.monotonic()
        while await _bounded(_behind(consumer, ends), topic, step):
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
            if any(batches.values()):
                moved = time.monotonic()
            elif time.monotonic() - moved > TABLE_STALL_S:
                raise TimeoutError
        return records
    except TimeoutError:
        raise TableStalled(f"{topic}: no progress for {TABLE_STALL_S:.0f}s {step}") from None
    finally:
        if consumer is not None:
            await _close(consumer, topic)


async def _close(consumer: AIOKafkaConsumer, topic: str) -> None:
    """Stop the consumer, waiting ``TABLE_CLOSE_S`` at most for its connections to close.

    Over TLS a connection closes once the broker answers the client's close_notify,
    which a broker holding the consumer's last fetch did not do: Python then waits out
    its 30 s ``ssl_shutdown_timeout`` (seen: every stop of a table reader on the cluster
    took 30 s, two or three per service start). The reading is done by then, so the
    connections are left to finish closing on their own.
    """
    try:
        await asyncio.wait_for(asyncio.shield(consumer.stop()), TABLE_CLOSE_S)
    except TimeoutError:
        log.info("%s: the table reader's connections are left to close on their own", topic)


async def _bounded(step: Awaitable[T], topic: str, what: str) -> T:
    """``step`` within ``TABLE_STALL_S``; one that took more than half of that is said in the log."""
    began = time.monotonic()
    try:
        return await asyncio.wait_for(step, TABLE_STALL_S)
    finally:
        took = time.monotonic() - began
        if took > TABLE_STALL_S / 2:
            log.warning("%s: %s took %.1fs", topic, what, took)


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
    """The partition numbers of ``topic``; none when it does not exist (it is not created here).

    A topic the cluster lists but describes with an error or without partitions (its
    metadata not settled, a leader being elected after a broker died) is asked again
    every ``METADATA_RETRY_S`` until it is described whole, never taken for an empty
    table: a service would otherwise start without its approvals (callers bound the wait).
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            return []
        while True:
            (described,) = await admin.describe_topics([topic])
            if not described.get("error_code") and described["partitions"]:
                return sorted(p["partition"] for p in described["partitions"])
            log.info("%s: described with error %s, asked again", topic, described.get("error_code"))
            await asyncio.sleep(METADATA_RETRY_S)
    finally:
        await admin.close()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False
