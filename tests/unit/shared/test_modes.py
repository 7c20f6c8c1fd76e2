"""The consume modes on in-memory records: what is handed over, kept, confirmed, or redone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from shared import topics
from shared.contracts import Finding, Owner, Severity
from shared.contracts.events import DeadLetter, StatusEvent
from shared.runtime.consumer import ConsumerLoop
from shared.settings import ServiceSettings
from shared.stage import Stage
from tests.conftest import eventually
from tests.unit.shared.runtime_fakes import Recording, record

pytestmark = pytest.mark.unit

TOPIC, ONWARD = "test.in", "test.onward"
FINDING = Finding(code="T", path="p", message="m", severity=Severity.ERROR, owner=Owner.PRODUCTION)


def body(message: str) -> bytes:
    return FINDING.model_copy(update={"message": message}).model_dump_json().encode()


def stage_with(sent: Recording) -> Stage[ServiceSettings]:
    stage = Stage("test", ServiceSettings(retry_initial_s=0.0, retry_max_s=0.0))
    stage.publisher(ONWARD, Finding)
    stage.emitter.outbound = sent
    return stage


def only_loop(stage: Stage[Any]) -> ConsumerLoop:
    (loop,) = stage.loops
    return loop


async def test_a_batch_whose_sends_are_not_acknowledged_raises_so_it_is_not_committed() -> None:
    sent = Recording(fail_with=KafkaTimeoutError())
    stage = stage_with(sent)
    handled: list[str] = []

    async def handle(finding: Finding) -> None:
        handled.append(finding.message)
        await stage.emitter.send(ONWARD, finding, key="V", correlation_id="c")

    stage.consume(TOPIC, Finding, handle)
    loop = only_loop(stage)
    settling = await loop.mode.handle([record(TOPIC, body("a"), key=b"V", offset=0)], loop)
    assert settling is not None, "a batch's acknowledgements are left for the loop to await"
    with pytest.raises(KafkaTimeoutError):
        await settling
    assert handled == ["a"] and [topic for topic, *_ in sent.sent] == [ONWARD]


class Held(Recording):
    """Acknowledgements that come only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[asyncio.Future[Any]] = []

    async def send(
        self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, value, key, headers))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    def acknowledge(self) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_result(None)


async def test_inside_a_batch_sends_are_queued_and_confirmed_together_outside_each_waits_for_its_own() -> (
    None
):
    sent = Held()
    stage = stage_with(sent)
    returned: list[str] = []

    async def handle(finding: Finding) -> None:
        await stage.emitter.send(ONWARD, finding, key="V", correlation_id="c")
        returned.append(finding.message)  # the send came back before its acknowledgement

    stage.consume(TOPIC, Finding, handle)
    loop = only_loop(stage)
    records = [record(TOPIC, body(str(n)), key=f"V{n}".encode(), offset=n) for n in range(3)]
    settling = await asyncio.wait_for(loop.mode.handle(records, loop), 5)  # handled, not acknowledged
    assert len(returned) == 3 and settling is not None
    batch = asyncio.ensure_future(settling)
    await asyncio.sleep(0.05)
    assert not batch.done(), "the batch's settling waits for its sends' acknowledgements"
    sent.acknowledge()
    await asyncio.wait_for(batch, 5)

    alone = asyncio.create_task(stage.emitter.send(ONWARD, FINDING, key="V", correlation_id="c"))
    await eventually(lambda: len(sent.sent) == 4, what="the send queued")
    assert not alone.done(), "outside a batch a send waits for its own acknowledgement"
    sent.acknowledge()
    await asyncio.wait_for(alone, 5)


async def test_a_broken_message_is_kept_with_a_status_at_the_revision_it_names_and_the_next_is_handled() -> (
    None
):
    sent = Recording()
    stage = stage_with(sent)
    handled: list[str] = []

    async def handle(finding: Finding) -> None:
        handled.append(finding.message)

    stage.consume(TOPIC, Finding, handle)
    loop = only_loop(stage)
    broken = record(TOPIC, b'{"record_id": "VINX:4"}', key=b"vinx", offset=0)
    await loop.mode.handle([broken, record(TOPIC, body("next"), key=b"vinx", offset=1)], loop)
    assert handled == ["next"]
    (letter,) = sent.models(topics.dlq(TOPIC), DeadLetter)
    (event,) = sent.models(topics.STATUS, StatusEvent)
    assert letter.offset == 0 and "code: Field required" in letter.reason
    assert (event.vin, event.revision, event.reason) == ("VINX", 4, letter.reason)


async def test_a_feed_keeps_broken_messages_without_a_status_and_hands_the_rest_over_at_once() -> None:
    sent = Recording()
    stage = stage_with(sent)
    batches: list[list[str]] = []

    async def handle(findings: list[Finding]) -> None:
        batches.append([finding.message for finding in findings])

    stage.consume_batches(TOPIC, Finding, handle, max_records=10)
    loop = only_loop(stage)
    await loop.mode.handle(
        [record(TOPIC, body("a")), record(TOPIC, b"{", offset=1), record(TOPIC, body("b"))], loop
    )
    assert batches == [["a", "b"]]
    assert [topic for topic, *_ in sent.sent] == [topics.dlq(TOPIC)]


async def test_a_table_row_whose_handler_fails_raises_after_its_back_off_so_the_rows_are_read_again() -> None:
    stage = stage_with(Recording())
    rows: list[str] = []

    async def handle(finding: Finding) -> None:
        rows.append(finding.message)
        if finding.message == "b":
            raise ConnectionError("database away")

    stage.consume(TOPIC, Finding, handle, broadcast=True, broken_state=None)
    loop = only_loop(stage)
    assert loop.subscription.group_id is None and loop.subscription.from_start
    with pytest.raises(ConnectionError):
        await loop.mode.handle([record(TOPIC, body("a")), record(TOPIC, body("b"), offset=1)], loop)
    assert rows == ["a", "b"] and stage.flows[0].failing_since is not None
