"""The view behind the lists: read whole once, then following the writers' journals, never awaited long."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from services.status.adapters.worklists import ListsNotReady, Worklists
from services.status.worklist import Entry, ListQuery, View
from shared.contracts.findings import Owner
from tests.conftest import eventually

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


def doc(vin: str, minutes: int = 0, state: str = "blocked") -> dict[str, Any]:
    return {
        "_id": vin,
        "record_id": f"{vin}:1",
        "revision": 1,
        "state": state,
        "vehicle_group": "CHR",
        "updated_at": T0 + dt.timedelta(minutes=minutes),
        "keys": ["production|MASS"],
        "findings": [{"owner": "production", "code": "MASS"}],
    }


class FakeStore:
    """Both sources of the lists (unsettled entries, writers' journals), and a switch holding the next whole read."""

    def __init__(self) -> None:
        self.entries = {"V1": doc("V1")}
        self.journals: dict[str, list[set[str]]] = {}
        self.pruned: set[tuple[str, int]] = set()
        self.whole_reads = 0
        self.release = asyncio.Event()
        self.release.set()

    def write(self, writer: str, vin: str, minutes: int, state: str = "blocked") -> None:
        if state == "archived":
            self.entries.pop(vin, None)
        else:
            self.entries[vin] = doc(vin, minutes, state)
        self.journals.setdefault(writer, []).append({vin})

    async def view(self) -> View:
        self.whole_reads += 1
        await self.release.wait()
        return View(
            Entry(d["updated_at"], vin, d["state"], d["vehicle_group"], frozenset(d["keys"]))
            for vin, d in self.entries.items()
        )

    async def heads(self) -> dict[str, int]:
        return {writer: len(entries) for writer, entries in self.journals.items()}

    async def named(self, writer: str, first: int, last: int) -> set[str] | None:
        if any((writer, n) in self.pruned for n in range(first, last + 1)):
            return None
        return set().union(*self.journals[writer][first - 1 : last])

    async def docs(self, vins: Sequence[str]) -> dict[str, Any]:
        return {vin: self.entries.get(vin) for vin in vins}


async def listed(worklists: Worklists) -> list[str]:
    return [item["vin"] for item in (await worklists.page(ListQuery(Owner.PRODUCTION)))["items"]]


async def test_the_view_is_read_whole_once_then_follows_the_journals() -> None:
    store = FakeStore()
    worklists = Worklists(store, store, wait_s=1.0)
    assert await listed(worklists) == ["V1"]
    store.write("w1", "V2", minutes=5)
    store.write("w2", "V3", minutes=3)
    assert await listed(worklists) == ["V1", "V3", "V2"]
    store.write("w1", "V1", minutes=9)  # changed: goes to the end
    store.write("w2", "V3", minutes=1, state="archived")  # left the lists
    assert await listed(worklists) == ["V2", "V1"]
    assert store.whole_reads == 1


async def test_a_reader_further_behind_than_the_journal_keeps_reads_the_view_whole_again() -> None:
    store = FakeStore()
    worklists = Worklists(store, store, wait_s=1.0)
    assert await listed(worklists) == ["V1"]
    store.write("w1", "V2", minutes=5)
    store.write("w1", "V3", minutes=6)
    store.pruned.add(("w1", 1))
    assert await listed(worklists) == ["V1", "V2", "V3"]
    assert store.whole_reads == 2


async def test_a_view_older_than_reload_s_is_read_whole_again() -> None:
    store = FakeStore()
    worklists = Worklists(store, store, wait_s=1.0, reload_s=0.0)
    assert await listed(worklists) == ["V1"]
    store.entries["V9"] = doc("V9", 1)  # written by a writer that died before its journal entry
    assert await listed(worklists) == ["V1", "V9"]
    assert store.whole_reads == 2


async def test_a_slow_refresh_is_not_awaited_the_last_view_answers_until_it_is_ready() -> None:
    store = FakeStore()
    worklists = Worklists(store, store, wait_s=0.05, reload_s=0.0)
    assert await listed(worklists) == ["V1"]
    store.release.clear()
    store.write("w1", "V2", minutes=5)
    assert await listed(worklists) == ["V1"]  # the last view, answered after wait_s
    assert await listed(worklists) == ["V1"] and store.whole_reads == 2  # the same read still running
    store.release.set()

    async def with_v2() -> list[str] | None:
        vins = await listed(worklists)
        return vins if "V2" in vins else None

    assert await eventually(with_v2, what="the list after the slow refresh") == ["V1", "V2"]


async def test_a_primed_view_is_read_once_and_serves_the_first_request() -> None:
    store = FakeStore()
    worklists = Worklists(store, store)
    worklists.prime()
    assert await listed(worklists) == ["V1"] and store.whole_reads == 1


async def test_an_item_that_left_the_list_since_the_view_was_taken_is_not_shown() -> None:
    store = FakeStore()
    worklists = Worklists(store, store, wait_s=0.0)
    assert await listed(worklists) == ["V1"]
    store.entries["V1"] = doc("V1", 1, state="validated")  # journal entry not yet visible
    assert await listed(worklists) == []


async def test_a_request_before_the_first_view_is_ready_is_told_to_come_back_and_the_read_goes_on() -> None:
    store = FakeStore()
    store.release.clear()
    worklists = Worklists(store, store, first_wait_s=0.05)
    worklists.prime()
    with pytest.raises(ListsNotReady, match="being read after a start"):
        await listed(worklists)
    store.release.set()
    assert await listed(worklists) == ["V1"] and store.whole_reads == 1
