"""The stage runtime on the real broker: publish through declared publishers, consume with the delivery rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import DeadLetter, State, StatusEvent
from shared.kafka import SCHEMA_VERSION_HEADER, SERVICE_HEADER
from shared.settings import CocSettings, ServiceSettings
from shared.stage import Stage, Unusable
from shared.telemetry import current_trace_id
from tests.conftest import eventually

pytestmark = pytest.mark.integration

FINDING = Finding(
    code="TEST",
    path="CocDataGroup/VehicleIdentificationNumber",
    message="m",
    severity=Severity.ERROR,
    owner=Owner.PRODUCTION,
)


def stage_of(settings: CocSettings) -> Stage[ServiceSettings]:
    return Stage("test", ServiceSettings(kafka_bootstrap=settings.kafka_bootstrap, retry_initial_s=0.05))


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
    """The group's committed offset once it reaches ``expected`` (the commit follows the handler)."""

    async def reached() -> int | None:
        offset = await committed_offset(settings, group, topic)
        return offset if offset >= expected else None

    return await eventually(
        reached, within_s=30, every_s=0.2, what=f"{group} committed {expected} on {topic}"
    )


async def publish_raw(settings: CocSettings, topic: str, value: bytes, key: bytes) -> None:
    """Bytes as a careless client sends them, outside any contract."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def read(settings: CocSettings, topic: str, wanted: Callable[[Any], bool], timeout: float = 60) -> Any:
    """The first record of ``topic`` (from its beginning) that ``wanted`` accepts."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            async for record in consumer:
                if wanted(record):
                    return record
    finally:
        await consumer.stop()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Stage[ServiceSettings]], Awaitable[None]]]:
    started: list[Stage[ServiceSettings]] = []

    async def start(stage: Stage[ServiceSettings]) -> None:
        await stage.start()
        started.append(stage)

    yield start
    for stage in started:
        await stage.stop()


async def test_a_contract_sent_through_its_publisher_arrives_with_key_correlation_id_and_headers(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic = f"test.roundtrip.{unique}"
    stage = stage_of(settings)
    stage.publisher(topic, Finding)
    received: asyncio.Queue[Finding] = asyncio.Queue()

    async def handle(finding: Finding) -> None:
        await received.put(finding)

    stage.consume(topic, Finding, handle)
    await running(stage)
    await stage.emitter.send(topic, FINDING, key="VIN1", correlation_id="VIN1:1")

    assert await asyncio.wait_for(received.get(), timeout=60) == FINDING
    record = await read(settings, topic, lambda r: r.key == b"VIN1")
    headers = {k: v.decode() for k, v in record.headers}
    assert headers[SCHEMA_VERSION_HEADER] == "1"
    assert headers[SERVICE_HEADER] == "test"
    assert headers["correlation_id"] == "VIN1:1"
    assert len(headers["traceparent"].split("-")) == 4
    assert headers["content-type"] == "application/json"
    assert [name for name, _ in record.headers][:2] == ["content-type", "correlation_id"]
    assert record.value == FINDING.model_dump_json().encode()
    assert await eventually_committed(settings, f"coc-test.{topic}", topic, 1) == 1


async def test_sending_to_a_topic_the_stage_never_declared_is_refused(settings: CocSettings) -> None:
    stage = stage_of(settings)
    with pytest.raises(LookupError, match="no publisher for nowhere"):
        await stage.emitter.send("nowhere", FINDING, key="K", correlation_id="K")


async def test_a_transient_fault_is_delivered_again_and_committed_only_after(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic = f"test.redeliver.{unique}"
    stage = stage_of(settings)
    stage.publisher(topic, Finding)
    attempts: list[int] = []
    done = asyncio.Event()

    async def handle(_finding: Finding) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database away")  # a transient fault
        done.set()

    stage.consume(topic, Finding, handle)
    await running(stage)
    await stage.emitter.send(topic, FINDING, key="VIN2", correlation_id="VIN2:1")
    await asyncio.wait_for(done.wait(), timeout=60)

    assert len(attempts) == 2
    assert await eventually_committed(settings, f"coc-test.{topic}", topic, 1) == 1


async def test_a_broken_message_goes_to_the_dlq_with_the_field_and_a_status_and_the_next_one_is_handled(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic, vin = f"test.broken.{unique}", f"BROKEN{unique}".upper()
    stage = stage_of(settings)
    handled: asyncio.Queue[Finding] = asyncio.Queue()

    async def handle(finding: Finding) -> None:
        await handled.put(finding)

    stage.consume(topic, Finding, handle)
    await running(stage)
    await publish_raw(settings, topic, b'{"code": "X"}', vin.encode())
    await publish_raw(settings, topic, FINDING.model_dump_json().encode(), vin.encode())

    assert await asyncio.wait_for(handled.get(), timeout=60) == FINDING
    letter = await read(settings, topics.dlq(topic), lambda r: r.key == vin.encode())
    dead = DeadLetter.model_validate_json(letter.value)
    assert dead.source_topic == topic and "path: Field required" in dead.reason
    status = await read(settings, topics.STATUS, lambda r: r.key == vin.encode())
    event = StatusEvent.model_validate_json(status.value)
    assert (event.state, event.stage, event.revision) == (State.FAILED, "test", 0)
    assert event.reason == dead.reason


async def test_a_handler_that_finds_a_message_unusable_keeps_it_in_the_dlq_and_moves_on(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic, vin = f"test.unusable.{unique}", f"UNUSABLE{unique}".upper()
    stage = stage_of(settings)
    stage.publisher(topic, Finding)
    seen: list[str] = []

    async def handle(finding: Finding) -> None:
        seen.append(finding.code)
        if finding.code == "TEST":
            raise Unusable("cannot use it", vin=vin, revision=3, state=State.FAILED)

    stage.consume(topic, Finding, handle)
    await running(stage)
    await stage.emitter.send(topic, FINDING, key=vin, correlation_id=f"{vin}:3")
    await stage.emitter.send(topic, FINDING.model_copy(update={"code": "NEXT"}), key=vin, correlation_id="x")

    letter = await read(settings, topics.dlq(topic), lambda r: r.key == vin.encode())
    assert DeadLetter.model_validate_json(letter.value).reason == "cannot use it"
    status = await read(settings, topics.STATUS, lambda r: r.key == vin.encode())
    assert StatusEvent.model_validate_json(status.value).revision == 3
    assert await eventually_committed(settings, f"coc-test.{topic}", topic, 2) == 2
    assert seen == ["TEST", "NEXT"]  # once each: the unusable one is not delivered again


async def test_a_batch_keeps_each_vins_order_overlaps_vins_confirms_its_sends_and_redoes_itself_after_a_fault(
    settings: CocSettings, unique: str, running: Any
) -> None:
    source, onward = f"test.batch.{unique}", f"test.batch.onward.{unique}"
    sender = stage_of(settings)
    sender.publisher(source, Finding)
    await running(sender)
    vins = [f"VIN{n}" for n in range(6)]
    for step in range(3):  # every VIN's messages 0, 1, 2, interleaved
        for vin in vins:
            message = FINDING.model_copy(update={"message": f"{vin}/{step}"})
            await sender.emitter.send(source, message, key=vin, correlation_id=f"{vin}:{step}")

    stage = stage_of(settings)
    stage.publisher(onward, Finding)
    handled: list[str] = []
    traces: dict[str, str | None] = {}
    first_seen = asyncio.Event()
    failed_once = False

    async def handle(finding: Finding) -> None:
        nonlocal failed_once
        vin, step = finding.message.split("/")
        if vin == "VIN0" and step == "0":
            # VIN1's first message must be handled while VIN0's waits: the batch overlaps VINs.
            await asyncio.wait_for(first_seen.wait(), timeout=30)
        if vin == "VIN1":
            first_seen.set()
        if vin == "VIN2" and step == "1" and not failed_once:
            failed_once = True
            raise ConnectionError("database away")  # transient: the whole batch comes again
        handled.append(finding.message)
        traces[finding.message] = current_trace_id()
        await stage.emitter.send(onward, finding, key=vin, correlation_id=f"{vin}:{step}")

    stage.consume(source, Finding, handle)
    await running(stage)
    await eventually_committed(settings, f"coc-test.{source}", source, 18)
    assert await committed_offset(settings, f"coc-test.{source}", source) == 18
    assert failed_once
    for vin in vins:
        steps = [int(m.split("/")[1]) for m in handled if m.startswith(f"{vin}/")]
        # in order each time it was handled; VIN2's batch was redone after its fault
        assert steps in ([0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 0, 1, 2]), (vin, steps)
    assert "VIN2/2" in handled and handled.index("VIN2/2") > handled.index("VIN2/1")
    sent = {FINDING.model_copy(update={"message": m}).model_dump_json().encode() for m in handled}
    onward_records = await read_until(settings, onward, lambda found: {r.value for r in found} >= sent)
    assert {r.value for r in onward_records} == sent  # every send of a finished batch confirmed
    source_traces = {
        record.key.decode() + "/" + str(n): trace_of(record)
        for n, record in enumerate(await read_until(settings, source, lambda found: len(found) >= 18))
    }
    assert len(set(traces.values())) == 18, "each record is handled in a trace of its own"
    assert set(traces.values()) == set(source_traces.values()), "the trace each record arrived with"


def trace_of(record: Any) -> str:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["traceparent"].split("-")[1]


async def read_until(
    settings: CocSettings, topic: str, enough: Callable[[list[Any]], bool], timeout: float = 60
) -> list[Any]:
    """The records of ``topic`` from its beginning, read until ``enough`` says so."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            async for record in consumer:
                found.append(record)
                if enough(found):
                    return found
    finally:
        await consumer.stop()
    return found


async def test_poison_messages_go_to_the_dlq_on_the_first_try_with_their_bytes_and_the_partition_moves_on(
    settings: CocSettings, unique: str, running: Any
) -> None:
    import base64
    import hashlib
    import os

    source, onward = f"test.poison.{unique}", f"test.poison.onward.{unique}"
    sender = stage_of(settings)
    sender.publisher(source, Finding)
    await running(sender)
    garbage = os.urandom(900_000)  # not UTF-8, not JSON: breaks the contract
    await publish_raw(settings, source, garbage, b"VIN1")
    big = FINDING.model_copy(update={"message": "BIG"})  # its handler makes a 2 MB output
    await sender.emitter.send(source, big, key="VIN1", correlation_id="VIN1:big")
    good = FINDING.model_copy(update={"message": "good"})
    await sender.emitter.send(source, good, key="VIN1", correlation_id="VIN1:good")

    stage = stage_of(settings)
    stage.publisher(onward, Finding)
    handled: list[str] = []

    async def handle(finding: Finding) -> None:
        handled.append(finding.message)
        if finding.message == "BIG":
            await stage.emitter.send(
                onward,
                finding.model_copy(update={"message": "x" * 2_000_000}),
                key="VIN1",
                correlation_id="c",
            )

    stage.consume(source, Finding, handle, broken_state=None)
    await running(stage)
    await eventually_committed(settings, f"coc-test.{source}", source, 3)
    assert handled.count("good") == 1 and handled.count("BIG") == 1  # the big one was not retried
    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in await read_until(settings, topics.dlq(source), lambda found: len(found) >= 2)
    ]
    by_offset = {letter.offset: letter for letter in letters}
    first, second = by_offset[0], by_offset[1]
    assert first.value_size == 900_000 and first.value_sha256 == hashlib.sha256(garbage).hexdigest()
    assert first.value_cut and base64.b64decode(first.value_b64 or "") == garbage[: first.value_kept]
    assert "too large for the broker" in second.reason and not second.value_cut
    assert base64.b64decode(second.value_b64 or "") == big.model_dump_json().encode()


async def test_a_subscription_that_keeps_failing_is_reported_stuck_and_clears_when_it_moves(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic = f"test.stuck.{unique}"
    stage = Stage(
        "test",
        ServiceSettings(
            kafka_bootstrap=settings.kafka_bootstrap, retry_initial_s=0.05, retry_max_s=0.1, stall_after_s=1.0
        ),
    )
    stage.publisher(topic, Finding)
    away = True
    handled = asyncio.Event()

    async def handle(_finding: Finding) -> None:
        if away:
            raise ConnectionError("database away")
        handled.set()

    stage.consume(topic, Finding, handle)
    await running(stage)
    await stage.emitter.send(topic, FINDING, key="VIN9", correlation_id="VIN9:1")
    (reason,) = await eventually(stage.stuck, within_s=20, what="the subscription reported stuck")
    assert reason.startswith(f"{topic}: failing for") and "does not move" in reason
    away = False
    await asyncio.wait_for(handled.wait(), timeout=30)
    await eventually(lambda: stage.stuck() == [], what="stuck cleared once the batch moved")


async def test_a_message_the_database_cannot_store_goes_to_the_dlq_and_the_next_is_handled(
    settings: CocSettings, unique: str, running: Any
) -> None:
    topic = f"test.overflow.{unique}"
    stage = stage_of(settings)
    stage.publisher(topic, Finding)
    handled: list[str] = []

    async def handle(finding: Finding) -> None:
        if finding.message == "huge":
            raise OverflowError("MongoDB can only handle up to 8-byte ints")  # as PyMongo says it
        handled.append(finding.message)

    stage.consume(topic, Finding, handle, broken_state=None)
    await running(stage)
    for message in ("huge", "fine"):
        await stage.emitter.send(
            topic, FINDING.model_copy(update={"message": message}), key="V", correlation_id=message
        )
    await eventually_committed(settings, f"coc-test.{topic}", topic, 2)
    assert handled == ["fine"]
    (letter,) = [
        DeadLetter.model_validate_json(r.value)
        for r in await read_until(settings, topics.dlq(topic), lambda found: len(found) >= 1)
    ]
    assert "OverflowError" in letter.reason and stage.stuck() == []


async def test_prepare_sees_the_usable_messages_of_a_batch_before_any_is_handled_and_its_fault_rewinds_it(
    settings: CocSettings, unique: str, running: Any
) -> None:
    source = f"test.prepare.{unique}"
    sender = stage_of(settings)
    sender.publisher(source, Finding)
    await running(sender)
    for n in range(4):
        message = FINDING.model_copy(update={"message": f"VIN{n}/0"})
        await sender.emitter.send(source, message, key=f"VIN{n}", correlation_id=f"VIN{n}:0")
        if n == 1:  # a broken message among them: not prepared, kept in the DLQ
            await publish_raw(settings, source, b'{"code": 1}', b"VIN9")
    later = FINDING.model_copy(update={"message": "VIN0/1"})  # not a VIN's first: handled, not prepared
    await sender.emitter.send(source, later, key="VIN0", correlation_id="VIN0:1")

    stage = stage_of(settings)
    prepared: list[list[str]] = []
    handled: list[str] = []
    faults = 1

    async def prepare(findings: list[tuple[Finding, str | None]]) -> None:
        nonlocal faults
        prepared.append([finding.message for finding, _trace in findings])
        assert all(trace and len(trace) == 32 for _finding, trace in findings), "each with its trace id"
        if faults:
            faults -= 1
            raise ConnectionError("database away")  # transient: the batch comes again, nothing handled

    async def handle(finding: Finding) -> None:
        assert prepared and f"{finding.message.split('/')[0]}/0" in set().union(*prepared), (
            "its VIN's first message was prepared before it is handled"
        )
        handled.append(finding.message)

    stage.consume(source, Finding, handle, prepare=prepare)
    await running(stage)
    await eventually_committed(settings, f"coc-test.{source}", source, 6)
    assert await committed_offset(settings, f"coc-test.{source}", source) == 6
    assert len(prepared) >= 2 and faults == 0
    assert set().union(*prepared) == {f"VIN{n}/0" for n in range(4)}, "each VIN's first usable message"
    assert all(len(batch) == len(set(batch)) for batch in prepared)
    expected = sorted([f"VIN{n}/0" for n in range(4)] + ["VIN0/1"])
    assert sorted(handled) == expected, "nothing handled twice after the fault"
    dead = await read(settings, topics.dlq(source), lambda record: record.key == b"VIN9")
    assert DeadLetter.model_validate_json(dead.value).reason


async def test_a_table_read_by_every_instance_is_handled_in_the_trace_each_message_came_with(
    settings: CocSettings, unique: str, running: Any
) -> None:
    """An approval's arrival releases held records: what they publish continues the approval's trace."""
    table, onward = f"test.table.{unique}", f"test.table.onward.{unique}"
    sender = stage_of(settings)
    sender.publisher(table, Finding)
    await running(sender)
    for n in range(2):
        await sender.emitter.send(
            table, FINDING.model_copy(update={"message": f"row{n}"}), key=f"K{n}", correlation_id=f"K{n}"
        )
    stage = stage_of(settings)
    stage.publisher(onward, Finding)
    traces: dict[str, str | None] = {}

    async def handle(finding: Finding) -> None:
        traces[finding.message] = current_trace_id()
        await stage.emitter.send(onward, finding, key="K", correlation_id=finding.message)

    stage.consume(table, Finding, handle, broadcast=True, broken_state=None)
    await running(stage)
    arrived = await read_until(settings, table, lambda found: len(found) >= 2)
    sent = await read_until(settings, onward, lambda found: len(found) >= 2)
    came_with = {record.value: trace_of(record) for record in arrived}
    assert set(traces.values()) == set(came_with.values()) and len(set(traces.values())) == 2
    assert {trace_of(record) for record in sent} == set(came_with.values()), "the onward sends left the trace"
