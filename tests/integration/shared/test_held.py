"""A held subscription on the real broker: written when due, committed only after, nothing lost on a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from shared import topics
from shared.contracts import Finding
from shared.contracts.events import DeadLetter
from shared.held import HoldPolicy
from shared.runtime.fold import HeldFold
from shared.settings import CocSettings, ServiceSettings
from shared.stage import Flow, Stage
from tests.conftest import eventually
from tests.integration.shared.test_stage import (
    FINDING,
    committed_offset,
    eventually_committed,
    publish_raw,
    read,
)

pytestmark = pytest.mark.integration

# More than one key held after the interval is a flood: held until the topic is quiet.
FLOOD = HoldPolicy(interval_s=0.1, flood_keys=1, max_s=600.0, max_bytes=10_000_000)
SENT = [("A", "A1"), ("B", "B1"), ("C", "C1"), ("A", "A2"), ("B", "B2"), ("A", "A3")]


def stage_of(settings: CocSettings) -> Stage[ServiceSettings]:
    return Stage("held", ServiceSettings(kafka_bootstrap=settings.kafka_bootstrap, retry_initial_s=0.05))


@pytest.fixture
async def stages() -> AsyncIterator[list[Stage[ServiceSettings]]]:
    started: list[Stage[ServiceSettings]] = []
    yield started
    for stage in started:
        await stage.stop()


async def die(stage: Stage[ServiceSettings]) -> None:
    """Stop as a killed process does: no batch finished, nothing held written, nothing committed."""
    for loop in stage.loops:
        assert loop._task is not None and loop.consumer is not None
        loop._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop._task
        await loop.consumer.stop()
    assert stage.producer is not None
    await stage.producer.stop()


async def send_all(stage: Stage[ServiceSettings], topic: str, unique: str) -> None:
    for key, code in SENT:
        await stage.emitter.send(
            topic, FINDING.model_copy(update={"code": code}), key=f"{key}{unique}", correlation_id=code
        )


def subscribe(
    stage: Stage[ServiceSettings], topic: str, write: Callable[[list[Finding]], Awaitable[object]]
) -> Flow:
    stage.publisher(topic, Finding)
    return stage.consume_held(topic, Finding, write, policy=FLOOD, max_records=100, timeout_ms=300)


async def test_a_flood_is_written_once_quiet_each_key_in_order_and_committed_only_after(
    settings: CocSettings, unique: str, stages: list[Stage[Any]]
) -> None:
    topic, group = f"test.held.{unique}", f"coc-held.test.held.{unique}"
    writes: list[list[str]] = []
    writing, release = asyncio.Event(), asyncio.Event()

    async def write(findings: list[Finding]) -> None:
        writing.set()
        await release.wait()
        writes.append([finding.code for finding in findings])

    stage = stage_of(settings)
    flow = subscribe(stage, topic, write)
    await stage.start()
    stages.append(stage)
    await send_all(stage, topic, unique)
    await publish_raw(settings, topic, b'{"code": "X"}', f"D{unique}".encode())  # broken

    await asyncio.wait_for(writing.wait(), timeout=60)
    await asyncio.sleep(1.0)  # time for a commit that must not come while the write is under way
    assert await committed_offset(settings, group, topic) == 0  # taken and being written: not yet
    assert flow.behind == 6  # what the board counts as not yet folded: the six held
    release.set()

    assert await eventually_committed(settings, group, topic, 7) == 7
    assert flow.behind == 0
    (written,) = writes  # one write, every key's events together and in order (keys in any order)
    runs = ["".join(code for code in written if code[0] == key) for key in "ABC"]
    assert runs == ["A1A2A3", "B1B2", "C1"] and sorted(written) == sorted(code for _, code in SENT)
    assert all(written.index(run[:2]) + len(run) // 2 - 1 == written.index(run[-2:]) for run in runs)
    letter = await read(settings, topics.dlq(topic), lambda r: r.key == f"D{unique}".encode())
    assert "path: Field required" in DeadLetter.model_validate_json(letter.value).reason


async def test_a_failed_write_is_retried_in_place_and_nothing_is_committed_until_it_succeeds(
    settings: CocSettings, unique: str, stages: list[Stage[Any]]
) -> None:
    topic, group = f"test.held.retry.{unique}", f"coc-held.test.held.retry.{unique}"
    attempts: list[list[str]] = []

    async def write(findings: list[Finding]) -> None:
        attempts.append([finding.code for finding in findings])
        if len(attempts) <= 3:
            raise ConnectionError("database away")

    stage = stage_of(settings)
    subscribe(stage, topic, write)
    await stage.start()
    stages.append(stage)
    await send_all(stage, topic, unique)

    await eventually(lambda: len(attempts) >= 2, what="the write retried")
    assert await committed_offset(settings, group, topic) == 0
    assert await eventually_committed(settings, group, topic, 6) == 6
    assert len(attempts) == 4 and all(codes == attempts[0] for codes in attempts)
    assert sorted(attempts[-1]) == sorted(code for _, code in SENT)


async def test_what_a_killed_process_held_is_read_again_by_the_next_and_written_whole(
    settings: CocSettings, unique: str, stages: list[Stage[Any]]
) -> None:
    topic, group = f"test.held.crash.{unique}", f"coc-held.test.held.crash.{unique}"
    first_took = asyncio.Event()

    async def never(_findings: list[Finding]) -> None:
        first_took.set()
        await asyncio.Event().wait()  # the process dies in the middle of its write

    first = stage_of(settings)
    subscribe(first, topic, never)
    await first.start()
    await send_all(first, topic, unique)
    await asyncio.wait_for(first_took.wait(), timeout=60)
    await die(first)
    assert await committed_offset(settings, group, topic) == 0

    written: list[str] = []

    async def write(findings: list[Finding]) -> None:
        written.extend(finding.code for finding in findings)

    second = stage_of(settings)
    subscribe(second, topic, write)
    await second.start()
    stages.append(second)
    assert await eventually_committed(settings, group, topic, 6) == 6
    assert sorted(written) == sorted(code for _, code in SENT)


async def test_the_count_not_yet_written_goes_down_as_each_part_is_written(
    settings: CocSettings, unique: str, stages: list[Stage[Any]]
) -> None:
    topic = f"test.held.count.{unique}"
    permits: asyncio.Queue[None] = asyncio.Queue()
    seen: list[tuple[list[str], int | None]] = []

    async def write(findings: list[Finding]) -> None:
        await permits.get()
        seen.append(([finding.code for finding in findings], flow.behind))

    stage = stage_of(settings)
    flow = subscribe(stage, topic, write)
    (loop,) = stage.loops
    assert isinstance(loop.mode, HeldFold)
    loop.mode.keys_per_write = 1  # one key per part: A, then B, then C
    await stage.start()
    stages.append(stage)
    await send_all(stage, topic, unique)
    for _ in range(3):
        permits.put_nowait(None)
    await eventually(lambda: len(seen) == 3, within_s=60, what="three parts written")

    # One key per part, each key's events in order; each part sees what was still unwritten when it
    # began: six, then six less the first part's, then less the second's too.
    parts = [codes for codes, _ in seen]
    assert sorted(parts) == [["A1", "A2", "A3"], ["B1", "B2"], ["C1"]]
    assert [behind for _, behind in seen] == [6, 6 - len(parts[0]), 6 - len(parts[0]) - len(parts[1])]
