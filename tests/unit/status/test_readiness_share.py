"""Readiness counted once for callers that arrive together, and again once it is old."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.status.routes import SharedResult
from tests.conftest import eventually

pytestmark = pytest.mark.unit


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def count(self) -> dict[str, Any]:
        self.calls += 1
        await self.release.wait()
        return {"total": self.calls}


async def test_callers_during_a_count_share_it_and_later_ones_get_a_new_count() -> None:
    now = [100.0]
    counter = Counter()
    shared = SharedResult(counter.count, ttl=2.0, clock=lambda: now[0])
    waiting = [asyncio.create_task(shared.get()) for _ in range(20)]
    await eventually(lambda: counter.calls, what="the first count to begin")
    counter.release.set()
    results = await asyncio.gather(*waiting)
    assert counter.calls == 1 and all(r["total"] == 1 for r in results)
    assert "as_of" in results[0]

    now[0] += 1.9
    assert (await shared.get())["total"] == 1
    now[0] += 0.2
    assert (await shared.get())["total"] == 2 and counter.calls == 2
