"""A batch subscriber's poll: records at once, an idle wait without a sleep after it, no spin."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from shared.kafka import EMPTY_POLL_PAUSE_S, wait_for_records

pytestmark = pytest.mark.unit


class Consumer:
    """getmany as aiokafka's: records as soon as there are any, else empty after the wait."""

    def __init__(self, arrives_after_s: float | None, wait_used: bool = True) -> None:
        self.arrives_after_s = arrives_after_s
        self.wait_used = wait_used
        self.asked: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[Any]]:
        self.asked.append((timeout_ms, max_records))
        if self.arrives_after_s is not None and self.arrives_after_s < timeout_ms / 1000:
            await asyncio.sleep(self.arrives_after_s)
            return {"p0": ["r1", "r2"], "p1": ["r3"]}
        if self.wait_used:
            await asyncio.sleep(timeout_ms / 1000)
        return {}


async def poll(consumer: Consumer, poll_ms: int) -> tuple[tuple[Any, ...], float]:
    subscriber = SimpleNamespace(max_records=7)
    wait_for_records(subscriber, poll_ms)
    began = time.monotonic()
    got = await subscriber.get_msg(consumer)
    return got, time.monotonic() - began


async def test_records_that_arrive_during_the_wait_are_taken_at_once_in_partition_order() -> None:
    consumer = Consumer(arrives_after_s=0.05)
    got, took = await poll(consumer, poll_ms=2000)
    assert got == ("r1", "r2", "r3")
    assert took < 1.0  # not the poll's 2 s
    assert consumer.asked == [(2000, 7)]


async def test_an_idle_poll_returns_when_its_wait_ends_without_sleeping_as_long_again() -> None:
    got, took = await poll(Consumer(arrives_after_s=None), poll_ms=300)
    assert got == ()
    assert 0.3 <= took < 0.5  # FastStream's own loop sleeps another 0.3 s here


async def test_a_poll_that_comes_back_empty_at_once_pauses_so_the_loop_cannot_spin() -> None:
    got, took = await poll(Consumer(arrives_after_s=None, wait_used=False), poll_ms=300)
    assert got == ()
    assert took >= EMPTY_POLL_PAUSE_S


class Tracked:
    """A consumer with partitions and the high watermarks its last fetches saw."""

    def __init__(self, batches: list[dict[str, list[Any]]], ends: dict[str, int | None]) -> None:
        self.batches, self.ends = batches, ends

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[Any]]:
        return self.batches.pop(0)

    def assignment(self) -> set[str]:
        return set(self.ends)

    def highwater(self, partition: str) -> int | None:
        return self.ends[partition]


async def test_each_poll_tells_how_many_records_wait_on_the_broker_for_the_partitions_read() -> None:
    def at(*offsets: int) -> list[Any]:
        return [SimpleNamespace(offset=offset) for offset in offsets]

    consumer = Tracked(
        [{"p0": at(10, 11), "p1": at(3)}, {}, {"p0": at(12, 13, 14)}],
        {"p0": 100, "p1": 4, "p2": 50, "p3": None},  # p2 not read yet, p3 never fetched
    )
    told: list[int] = []
    subscriber = SimpleNamespace(max_records=7)
    wait_for_records(subscriber, 300, behind=told.append)
    for _ in range(3):
        await subscriber.get_msg(consumer)
    consumer.ends["p0"] = 120  # the next fetch saw more records arrive
    consumer.batches.append({})
    await subscriber.get_msg(consumer)
    assert told == [100 - 12 + 0, 100 - 12 + 0, 100 - 15 + 0, 120 - 15]
