"""The view of waiting records behind the worklists: taken again when they change, never awaited long."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from services.status.adapters.records import Worklists
from services.status.worklist import OpenEntry, WorklistQuery
from shared.contracts.findings import Owner

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


class FakeStore:
    """The open version, the waiting VINs, and a switch that holds the next view until released."""

    def __init__(self) -> None:
        self.version, self.vins, self.loads = 1, ["V1"], 0
        self.release = asyncio.Event()
        self.release.set()

    async def open_version(self) -> int:
        return self.version

    async def open_entries(self) -> dict[str, list[OpenEntry]]:
        self.loads += 1
        await self.release.wait()
        return {"production": [OpenEntry(T0, vin, "CHR", frozenset({"MASS"})) for vin in self.vins]}

    async def open_items(self, vins: Sequence[str], owner: Owner, now: dt.datetime) -> list[dict[str, Any]]:
        return [{"vin": vin} for vin in vins]


async def vins(worklists: Worklists) -> list[str]:
    return [item["vin"] for item in (await worklists.page(WorklistQuery(Owner.PRODUCTION)))["items"]]


async def test_view_is_taken_once_while_nothing_changes_and_again_when_the_open_version_moves() -> None:
    store = FakeStore()
    worklists = Worklists(store, wait_s=1.0)  # type: ignore[arg-type]
    assert await vins(worklists) == ["V1"]
    assert await vins(worklists) == ["V1"] and store.loads == 1
    store.vins, store.version = ["V1", "V2"], 2
    assert await vins(worklists) == ["V1", "V2"] and store.loads == 2


async def test_slow_view_is_not_awaited_the_last_one_answers_until_it_is_ready() -> None:
    store = FakeStore()
    worklists = Worklists(store, wait_s=0.05)  # type: ignore[arg-type]
    assert await vins(worklists) == ["V1"]
    store.release.clear()
    store.vins, store.version = ["V2"], 2
    assert await vins(worklists) == ["V1"]  # stale, answered after wait_s
    assert await vins(worklists) == ["V1"] and store.loads == 2  # the same load still running
    store.release.set()
    await asyncio.sleep(0.01)
    assert await vins(worklists) == ["V2"] and store.loads == 2


async def test_a_primed_view_is_taken_once_and_serves_the_first_request() -> None:
    store = FakeStore()
    worklists = Worklists(store)  # type: ignore[arg-type]
    worklists.prime()
    assert await vins(worklists) == ["V1"] and store.loads == 1
