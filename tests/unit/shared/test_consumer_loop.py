"""The consume loop: records handed over at once, committed after the handler, rewound after a fault, no spin."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence

import pytest
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.consumer.fetcher import Fetcher as AiokafkaFetcher

from shared.kafka import Record
from shared.runtime.consumer import (
    EMPTY_POLL_PAUSE_S,
    GATHER_BYTES,
    ConsumerLoop,
    Mode,
    SettledFirst,
    Settling,
    Subscription,
)
from shared.settings import CocSettings
from tests.unit.shared.runtime_fakes import record

pytestmark = pytest.mark.unit

P0, P1, P2, P3 = (TopicPartition("t", n) for n in range(4))


class Consumer:
    """aiokafka's consumer as the loop uses it: getmany, assignment, highwater, seek, commit."""

    def __init__(self, batches: list[dict[TopicPartition, list[Record]]], *, wait_used: bool = True) -> None:
        self.batches, self.wait_used = batches, wait_used
        self.asked: list[tuple[int, int | None]] = []
        self.ends: dict[TopicPartition, int | None] = {P0: None, P1: None}
        self.committed: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def getmany(
        self, *, timeout_ms: int, max_records: int | None
    ) -> dict[TopicPartition, list[Record]]:
        self.asked.append((timeout_ms, max_records))
        if self.batches:
            return self.batches.pop(0)
        if self.wait_used:
            await asyncio.sleep(timeout_ms / 1000)  # aiokafka waits the whole poll when nothing comes
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.ends[partition]

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets)


class Kept(Mode):
    """A mode that keeps what it is handed and fails while told to."""

    def __init__(self, failing: bool = False) -> None:
        self.handled: list[list[int]] = []
        self.quiet_polls = 0
        self.told: list[int] = []
        self.failing = failing

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> Settling | None:
        self.handled.append([r.offset for r in records])
        if self.failing:
            raise ConnectionError("database away")
        return None

    async def quiet(self, loop: ConsumerLoop) -> None:
        self.quiet_polls += 1

    def behind(self, records: int) -> None:
        self.told.append(records)


def at(partition: TopicPartition, *offsets: int) -> list[Record]:
    return [record(partition.topic, b"{}", partition=partition.partition, offset=o) for o in offsets]


def loop_of(consumer: Consumer, mode: Mode, *, poll_ms: int = 300, group: str | None = "g") -> ConsumerLoop:
    loop = ConsumerLoop(
        CocSettings(), Subscription("t", group_id=group, max_records=7, poll_ms=poll_ms), mode, client_id="c"
    )
    loop.consumer = consumer  # type: ignore[assignment]
    return loop


async def test_a_batch_is_handed_over_in_partition_order_and_then_committed_after_its_last_record() -> None:
    consumer, mode = Consumer([{P0: at(P0, 4, 5), P1: at(P1, 9)}]), Kept()
    await loop_of(consumer, mode).poll_once(consumer)  # type: ignore[arg-type]
    assert mode.handled == [[4, 5, 9]]
    assert consumer.asked == [(300, 7)]
    assert consumer.committed == [{P0: 6, P1: 10}]
    assert consumer.seeks == []


async def test_a_batch_whose_handler_fails_is_not_committed_and_each_partition_goes_back_to_its_first_record() -> (
    None
):
    consumer, mode = Consumer([{P0: at(P0, 4, 5), P1: at(P1, 9)}]), Kept(failing=True)
    await loop_of(consumer, mode).poll_once(consumer)  # type: ignore[arg-type]
    assert consumer.committed == []
    assert sorted(consumer.seeks) == [(P0, 4), (P1, 9)]


async def test_a_reader_in_no_group_commits_nothing() -> None:
    consumer, mode = Consumer([{P0: at(P0, 1)}]), Kept()
    await loop_of(consumer, mode, group=None).poll_once(consumer)  # type: ignore[arg-type]
    assert mode.handled == [[1]] and consumer.committed == []


async def test_an_idle_poll_tells_the_mode_the_topic_is_quiet_when_its_wait_ends_without_sleeping_again() -> (
    None
):
    consumer, mode = Consumer([]), Kept()
    began = time.monotonic()
    await loop_of(consumer, mode).poll_once(consumer)  # type: ignore[arg-type]
    took = time.monotonic() - began
    assert mode.quiet_polls == 1 and mode.handled == []
    assert 0.3 <= took < 0.5  # the poll's own wait, and no sleep after it


async def test_a_poll_that_comes_back_empty_at_once_pauses_so_the_loop_cannot_spin_and_is_not_quiet() -> None:
    consumer, mode = Consumer([], wait_used=False), Kept()
    began = time.monotonic()
    await loop_of(consumer, mode).poll_once(consumer)  # type: ignore[arg-type]
    assert time.monotonic() - began >= EMPTY_POLL_PAUSE_S
    assert mode.quiet_polls == 0


async def test_each_poll_tells_how_many_records_wait_on_the_broker_for_the_partitions_read() -> None:
    consumer = Consumer([{P0: at(P0, 10, 11), P1: at(P1, 3)}, {}, {P0: at(P0, 12, 13, 14)}], wait_used=False)
    consumer.ends = {P0: 100, P1: 4, P2: 50, P3: None}  # P2 not read yet, P3 never fetched
    mode = Kept()
    loop = loop_of(consumer, mode)
    for _ in range(3):
        await loop.poll_once(consumer)  # type: ignore[arg-type]
    consumer.ends[P0] = 120  # the next fetch saw more records arrive
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert mode.told == [100 - 12 + 0, 100 - 12 + 0, 100 - 15 + 0, 120 - 15]


async def test_a_stopping_loop_lets_its_batch_finish_then_lets_the_mode_write_then_leaves() -> None:
    order: list[str] = []
    release = asyncio.Event()

    class Slow(Kept):
        async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> None:
            order.append("batch begun")
            await release.wait()
            order.append("batch done")

        async def stopping(self, loop: ConsumerLoop) -> None:
            order.append("mode wrote")

    class Stoppable(Consumer):
        async def stop(self) -> None:
            order.append("left")

    consumer = Stoppable([{P0: at(P0, 1)}])
    loop = loop_of(consumer, Slow())
    task = asyncio.create_task(loop._run(consumer))  # type: ignore[arg-type]
    loop._task = task
    while not order:
        await asyncio.sleep(0)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert order == ["batch begun"], "stop waits for the batch"
    release.set()
    await stopping
    assert order == ["batch begun", "batch done", "mode wrote", "left"]
    assert consumer.committed == [{P0: 2}]


def test_a_subscription_asks_the_broker_to_gather_only_when_told_to() -> None:
    plain, gathering = (
        Subscription("t", group_id="g"),
        Subscription("t", group_id=None, from_start=False, gather_ms=250),
    )
    assert (plain.options()["fetch_min_bytes"], plain.options()["auto_offset_reset"]) == (1, "earliest")
    assert gathering.options()["fetch_max_wait_ms"] == 250 and gathering.options()["fetch_min_bytes"] > 1
    assert gathering.options()["auto_offset_reset"] == "latest"
    assert all(s.options()["enable_auto_commit"] is False for s in (plain, gathering))


class Fetcher:
    """What aiokafka's fetcher builds each fetch request from."""

    def __init__(self, min_bytes: int, max_wait_ms: int) -> None:
        self._fetch_min_bytes, self._fetch_max_wait_ms = min_bytes, max_wait_ms


def gathering_loop(consumer: Consumer, mode: Mode, *, gather_ms: int) -> ConsumerLoop:
    sub = Subscription("t", group_id="g", max_records=7, poll_ms=300, gather_ms=gather_ms)
    loop = ConsumerLoop(CocSettings(), sub, mode, client_id="c")
    options = sub.options()
    consumer._fetcher = Fetcher(options["fetch_min_bytes"], options["fetch_max_wait_ms"])  # type: ignore[attr-defined]
    loop.consumer = consumer  # type: ignore[assignment]
    return loop


async def test_a_gathering_consumer_waits_for_the_first_record_once_quiet_and_gathers_again_when_records_come() -> (
    None
):
    consumer, mode = Consumer([{}, {P0: at(P0, 1)}]), Kept()  # a poll that waited for nothing, then a record
    loop = gathering_loop(consumer, mode, gather_ms=40)
    fetcher = consumer._fetcher  # type: ignore[attr-defined]
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (GATHER_BYTES, 40)
    consumer.wait_used = True
    consumer.batches = []
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert mode.quiet_polls == 1
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 300)  # answered at the first record
    consumer.batches = [{P0: at(P0, 1)}]
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert mode.handled == [[1]]
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (GATHER_BYTES, 40)


async def test_a_consumer_that_never_gathers_keeps_its_fetches_as_they_were() -> None:
    consumer, mode = Consumer([]), Kept()
    loop = gathering_loop(consumer, mode, gather_ms=0)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    fetcher = consumer._fetcher  # type: ignore[attr-defined]
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 500)


def test_aiokafkas_fetcher_still_builds_each_fetch_request_from_the_two_values_the_loop_changes() -> None:
    # gather_while_flowing changes them on a running consumer; an aiokafka that read them once would ignore it
    source = inspect.getsource(AiokafkaFetcher)
    assert "self._fetch_min_bytes = fetch_min_bytes" in source
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in source
    built = inspect.getsource(AiokafkaFetcher._get_actions_per_node)
    assert "self._fetch_min_bytes" in built and "self._fetch_max_wait_ms" in built


class Settles(Kept):
    """A mode whose batches settle (their sends acknowledged) only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.settling: list[asyncio.Future[None]] = []
        self.events: list[str] = []

    async def handle(self, records: Sequence[Record], loop: ConsumerLoop) -> Settling:
        await super().handle(records, loop)
        self.settling.append(asyncio.get_running_loop().create_future())
        return self.settling[-1]

    async def quiet(self, loop: ConsumerLoop) -> None:
        await super().quiet(loop)
        self.events.append(f"quiet after {len(loop.consumer.committed)} commits")  # type: ignore[union-attr]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never came")


async def test_the_next_batch_is_handled_while_the_last_ones_sends_settle_and_each_is_committed_in_order() -> (
    None
):
    consumer = Consumer([{P0: at(P0, 1, 2)}, {P0: at(P0, 3), P1: at(P1, 8)}, {}], wait_used=False)
    mode = Settles()
    loop = loop_of(consumer, mode)
    await asyncio.wait_for(loop.poll_once(consumer), 1)  # type: ignore[arg-type]  # returns before it settles
    assert mode.handled == [[1, 2]] and consumer.committed == [], "not committed before its sends settle"
    second = asyncio.create_task(loop.poll_once(consumer))  # type: ignore[arg-type]
    await until(lambda: len(mode.handled) == 2)
    assert mode.handled[1] == [3, 8] and consumer.committed == [], "read and handled while the first settles"
    assert not second.done(), "a second batch does not go on before the first is committed"
    mode.settling[0].set_result(None)
    await asyncio.wait_for(second, 1)
    assert consumer.committed == [{P0: 3}]
    mode.settling[1].set_result(None)
    await loop.poll_once(consumer)  # nothing came: what settles is committed before the next poll
    assert consumer.committed == [{P0: 3}, {P0: 4, P1: 9}]
    assert consumer.seeks == []


async def test_a_batch_whose_settling_fails_comes_again_from_its_first_record_with_the_batch_after_it() -> (
    None
):
    consumer = Consumer([{P0: at(P0, 1, 2), P1: at(P1, 5)}, {P0: at(P0, 3), P2: at(P2, 7)}], wait_used=False)
    consumer.ends = {P0: None, P1: None, P2: None}
    mode = Settles()
    loop = loop_of(consumer, mode)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[0].set_exception(ConnectionError("not acknowledged"))
    second = asyncio.create_task(loop.poll_once(consumer))  # type: ignore[arg-type]
    await until(lambda: len(mode.settling) == 2)
    await asyncio.sleep(0.02)
    assert not second.done(), "the second batch's sends are awaited before it goes back, not left behind"
    mode.settling[1].set_result(None)
    await asyncio.wait_for(second, 1)
    assert mode.handled == [[1, 2, 5], [3, 7]]
    assert consumer.committed == []
    assert dict(consumer.seeks) == {P0: 1, P1: 5, P2: 7}, (
        "each partition back to its first uncommitted record"
    )


async def test_a_batch_failing_while_the_last_one_settles_goes_back_after_that_one_is_committed() -> None:
    consumer = Consumer([{P0: at(P0, 1, 2)}, {P0: at(P0, 3), P1: at(P1, 8)}], wait_used=False)
    mode = Settles()
    loop = loop_of(consumer, mode)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[0].set_result(None)
    mode.failing = True
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert consumer.committed == [{P0: 3}]
    assert dict(consumer.seeks) == {P0: 3, P1: 8}


async def test_a_quiet_topic_commits_the_batch_settling_before_the_mode_is_told() -> None:
    consumer = Consumer([{P0: at(P0, 1)}])
    mode = Settles()
    loop = loop_of(consumer, mode, poll_ms=50)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[0].set_result(None)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert mode.events == ["quiet after 1 commits"]


async def test_a_stopping_loop_commits_the_batch_settling_before_the_mode_writes() -> None:
    order: list[str] = []

    class Stoppable(Consumer):
        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            await super().commit(offsets)
            order.append("committed")

        async def stop(self) -> None:
            order.append("left")

    class Writes(Settles):
        async def stopping(self, loop: ConsumerLoop) -> None:
            order.append("mode wrote")

    consumer, mode = Stoppable([{P0: at(P0, 1)}]), Writes()
    loop = loop_of(consumer, mode)
    loop._task = asyncio.create_task(loop._run(consumer))  # type: ignore[arg-type]
    await until(lambda: len(mode.settling) == 1)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert order == [], "stop waits for the batch to settle"
    mode.settling[0].set_result(None)
    await asyncio.wait_for(stopping, 2)
    assert order == ["committed", "mode wrote", "left"]
    assert consumer.committed == [{P0: 2}]


async def test_partitions_taken_away_wait_for_the_batch_settling_to_be_committed_then_the_mode_is_told() -> (
    None
):
    told: list[str] = []

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: object) -> None:
            told.append(f"revoked after {len(consumer.committed)} commits")

        async def on_partitions_assigned(self, assigned: object) -> None:
            told.append("assigned")

    consumer, mode = Consumer([{P0: at(P0, 1)}]), Settles()
    loop = loop_of(consumer, mode)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    listener = SettledFirst(loop, Listener())
    revoking = asyncio.create_task(listener.on_partitions_revoked({P0}))
    await asyncio.sleep(0.05)
    assert not revoking.done() and told == []
    mode.settling[0].set_result(None)
    await asyncio.wait_for(revoking, 1)
    await listener.on_partitions_assigned({P1})
    assert told == ["revoked after 1 commits", "assigned"]


async def test_a_loop_told_not_to_read_ahead_commits_each_batch_once_settled_before_it_polls_again() -> None:
    consumer, mode = Consumer([{P0: at(P0, 1)}, {P0: at(P0, 2)}], wait_used=False), Settles()
    loop = ConsumerLoop(CocSettings(), Subscription("t", group_id="g", ahead=False), mode, client_id="c")
    loop.consumer = consumer  # type: ignore[assignment]
    first = asyncio.create_task(loop.poll_once(consumer))  # type: ignore[arg-type]
    await until(lambda: len(mode.settling) == 1)
    await asyncio.sleep(0.02)
    assert not first.done() and consumer.committed == []
    mode.settling[0].set_result(None)
    await asyncio.wait_for(first, 1)
    assert consumer.committed == [{P0: 2}] and consumer.asked == [(500, 500)]


async def test_batches_settled_within_the_commit_interval_are_committed_together_when_the_topic_goes_quiet() -> (
    None
):
    consumer = Consumer([{P0: at(P0, 1)}, {P0: at(P0, 2), P1: at(P1, 6)}, {P0: at(P0, 3)}], wait_used=False)
    mode = Settles()
    sub = Subscription("t", group_id="g", poll_ms=50, commit_every_ms=60_000)
    loop = ConsumerLoop(CocSettings(), sub, mode, client_id="c")
    loop.consumer = consumer  # type: ignore[assignment]
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[0].set_result(None)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert consumer.committed == [{P0: 2}], "the first settled batch is committed: none was before"
    mode.settling[1].set_result(None)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[2].set_result(None)
    assert consumer.committed == [{P0: 2}], "within the interval the settled batches wait"
    consumer.wait_used = True
    await loop.poll_once(consumer)  # type: ignore[arg-type]  # nothing comes: quiet
    assert consumer.committed == [{P0: 2}, {P0: 4, P1: 7}]
    assert mode.quiet_polls == 1


async def test_partitions_taken_away_first_get_the_settled_batches_committed_within_the_interval() -> None:
    consumer, mode = Consumer([{P0: at(P0, 1)}, {P0: at(P0, 2)}], wait_used=False), Settles()
    sub = Subscription("t", group_id="g", commit_every_ms=60_000)
    loop = ConsumerLoop(CocSettings(), sub, mode, client_id="c")
    loop.consumer = consumer  # type: ignore[assignment]
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[0].set_result(None)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    mode.settling[1].set_result(None)
    assert consumer.committed == [{P0: 2}]
    await SettledFirst(loop, None).on_partitions_revoked({P0})
    assert consumer.committed == [{P0: 2}, {P0: 3}]
