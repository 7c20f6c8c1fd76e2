"""The lists' query side: pages of the worklists and state lists, from a view that follows the journals."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from services.status.adapters.documents import by_ids
from services.status.fold import StatusServiceError
from services.status.worklist import WAITING, Entry, ListQuery, View, age_s
from shared.contracts.findings import Owner
from shared.mongo import MongoDoc

WORKLIST_WAIT_S = 0.05  # how long a list request waits for a fresher view before serving the last one
FIRST_WAIT_S = 2.0  # how long a list request waits for the first view before it is told to come back
RELOAD_S = 900.0  # a view is read whole again this often (it repairs what a writer's crash left unsaid)
CATCH_UP_LIMIT = 2_000  # journal entries a reader follows before it rather reads the view whole


class ListsNotReady(StatusServiceError):
    """The lists' view is still being read after a start; the request is answered later, not held."""


class Listed(Protocol):
    """The unsettled entries, as the lists read them."""

    async def view(self) -> View: ...

    async def docs(self, vins: Sequence[str]) -> dict[str, MongoDoc | None]: ...


class Journals(Protocol):
    """Every writer's journal, as the lists read them (``journal.Journal``)."""

    async def heads(self) -> dict[str, int]: ...

    async def named(self, writer: str, first: int, last: int) -> set[str] | None: ...


class UnsettledEntries:
    """The reads of the unsettled entries: all of them as a view, or some by ``_id``."""

    def __init__(self, collection: AsyncCollection[MongoDoc]) -> None:
        self.collection = collection

    async def view(self) -> View:
        """Every unsettled record as a list entry (one pass over the collection)."""
        fields = {"updated_at": 1, "vehicle_group": 1, "keys": 1, "state": 1, "record_type": 1, "country": 1}
        cursor = self.collection.find({}, fields)
        return View([entry_of(doc) async for doc in cursor])

    async def docs(self, vins: Sequence[str]) -> dict[str, MongoDoc | None]:
        """The unsettled entries of ``vins`` in their order, read by ``_id``; None for a VIN that has none."""
        docs = await by_ids(self.collection, vins)
        return {vin: docs.get(vin) for vin in vins}


@dataclass
class Followed:
    """A view of the unsettled records and how far into each writer's journal it is."""

    view: View
    heads: dict[str, int]
    taken: float  # monotonic time the whole read began
    as_of: dt.datetime  # wall time the view was last brought up to date


class Worklists:
    """Pages of the worklists and state lists, from a view of the unsettled records kept here.

    FerretDB answers a filter on a collection only by reading all of it (see
    ``shared.mongo``): too slow per request with 100,000 records waiting. So the
    selection (team or state, group, finding code, age) and the paging run on a
    view held in this process, and only the page's records are read, by ``_id``.

    The view is read whole once (at start, ``prime``; a request that comes
    before it is ready waits ``first_wait_s`` and is then told to come back
    with ``ListsNotReady``), then follows the writers' journals: a request
    first reads the heads (one small collection), and when a writer moved on,
    the VINs its new journal entries name are read again by ``_id`` and put
    into the view. A request waits ``wait_s`` for that and otherwise is
    answered from the view as it is (``as_of`` says when it was last brought
    up to date): at rest every answer is exact, under load none waits long.
    The view is the one thing kept here; it is read whole again when a reader
    fell further behind than the journals keep, and every ``reload_s`` to
    repair what a writer that crashed between its write and its journal entry
    left unsaid.
    """

    def __init__(
        self,
        listed: Listed,
        journals: Journals,
        wait_s: float = WORKLIST_WAIT_S,
        reload_s: float = RELOAD_S,
        first_wait_s: float = FIRST_WAIT_S,
    ) -> None:
        self.listed, self.journals = listed, journals
        self.wait_s, self.reload_s, self.first_wait_s = wait_s, reload_s, first_wait_s
        self._followed: Followed | None = None
        self._refresh: asyncio.Task[Followed] | None = None

    async def page(self, query: ListQuery) -> dict[str, Any]:
        followed = await self._current()
        now = dt.datetime.now(dt.UTC)
        chosen, total, after = followed.view.select(query, now)
        docs = await self.listed.docs([entry.vin for entry in chosen])
        items = [
            list_item(doc, query.owner, now)
            for doc in docs.values()
            if doc is not None and still_listed(doc, query)
        ]
        listed = {"owner": query.owner.value} if query.owner else {"state": query.state.value}  # type: ignore[union-attr]
        return {
            **listed,
            "items": items,
            "total": total,
            "page": query.page,
            "size": query.size,
            "order": "oldest first",
            "next": after.token() if after else None,
            "as_of": followed.as_of.isoformat(),
        }

    def prime(self) -> None:
        """Start reading the view now (at start), so the first request need not wait for all of it."""
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._bring_up_to_date(None))

    async def _current(self) -> Followed:
        followed = self._followed
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._bring_up_to_date(followed))
        if followed is None:
            try:
                return await asyncio.wait_for(asyncio.shield(self._refresh), self.first_wait_s)
            except TimeoutError:
                raise ListsNotReady(
                    "the lists are being read after a start (about 40 s per million records); "
                    "ask again shortly"
                ) from None
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh), self.wait_s)
        except TimeoutError:
            return followed

    async def _bring_up_to_date(self, followed: Followed | None) -> Followed:
        if followed is None or time.monotonic() - followed.taken > self.reload_s:
            followed = await self._read_whole()
        if not await self._follow(followed):
            followed = await self._read_whole()
            await self._follow(followed)
        self._followed = followed
        return followed

    async def _read_whole(self) -> Followed:
        # The heads are read before the entries: a change while they are read is in the
        # journal after those heads, and following it puts the VIN in again.
        began, heads = time.monotonic(), await self.journals.heads()
        return Followed(await self.listed.view(), heads, began, dt.datetime.now(dt.UTC))

    async def _follow(self, followed: Followed) -> bool:
        """Apply the journals since the view's heads; False when a whole read is due instead."""
        as_of, heads = dt.datetime.now(dt.UTC), await self.journals.heads()
        behind = {writer: (followed.heads.get(writer, 0), n) for writer, n in heads.items()}
        behind = {writer: span for writer, span in behind.items() if span[1] > span[0]}
        if sum(last - known for known, last in behind.values()) > CATCH_UP_LIMIT:
            return False
        vins: set[str] = set()
        for writer, (known, last) in behind.items():
            named = await self.journals.named(writer, known + 1, last)
            if named is None:
                return False
            vins |= named
        for vin, doc in (await self.listed.docs(sorted(vins))).items():
            if doc is None:
                followed.view.drop(vin)
            else:
                followed.view.put(entry_of(doc))
        followed.heads.update({writer: last for writer, (_, last) in behind.items()})
        followed.as_of = as_of
        return True


def entry_of(doc: MongoDoc) -> Entry:
    return Entry(
        doc["updated_at"],
        doc["_id"],
        doc["state"],
        doc.get("vehicle_group"),
        frozenset(doc.get("keys", [])),
        doc.get("record_type"),
        doc.get("country"),
    )


def still_listed(doc: MongoDoc, query: ListQuery) -> bool:
    """Whether the entry, read after the view was taken, still belongs to the list."""
    if query.owner is not None:
        return doc["state"] in WAITING and any(
            key.partition("|")[0] == query.owner.value for key in doc.get("keys", [])
        )
    return query.state is not None and doc["state"] == query.state.value


def list_item(doc: MongoDoc, owner: Owner | None, now: dt.datetime) -> MongoDoc:
    """A list entry: the record with its findings (in a worklist, only those ``owner`` must act on)."""
    return {
        "vin": doc["_id"],
        "record_id": doc["record_id"],
        "revision": doc["revision"],
        "state": doc["state"],
        "vehicle_group": doc.get("vehicle_group"),
        "record_type": doc.get("record_type"),
        "country": doc.get("country"),
        "updated_at": doc["updated_at"],
        "age_s": age_s(doc["updated_at"], now),
        "findings": [f for f in doc.get("findings", []) if owner is None or f["owner"] == owner.value],
    }
