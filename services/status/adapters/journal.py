"""Which VINs' unsettled entries each writing process changed, in order: what the lists follow.

Each process that writes records keeps its own journal: numbered entries
(``<writer>:<n>``), each naming the VINs whose unsettled entries one batch of
folds wrote, and a head saying how far the journal goes. A reader of the lists
(``worklists``) reads the heads, and for a writer that moved on, the entries
since it last looked, then reads those VINs' unsettled entries again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection

from services.status.adapters.documents import by_ids
from shared.mongo import MongoDoc

JOURNAL_KEEP = 20_000  # journal entries each writing process keeps; a reader further behind reloads
HEAD_MAX_AGE = dt.timedelta(days=2)  # a writer silent this long is gone: its journal is deleted

log = logging.getLogger(__name__)


def journal_id(writer: str, n: int) -> str:
    return f"{writer}:{n:012d}"


class Journal:
    """This process's journal (``note``, then ``flush``) and the reads of every writer's (``heads``, ``named``).

    The VINs noted since the last entry are the one thing kept in memory: a
    flush that writes them empties the set, a flush that fails keeps them for
    the next one.
    """

    def __init__(self, entries: AsyncCollection[MongoDoc], heads: AsyncCollection[MongoDoc]) -> None:
        self.entries, self.head_docs = entries, heads
        self.writer = uuid.uuid4().hex[:16]  # this process in the journal
        self._n = 0
        self._noted: set[str] = set()  # VINs whose unsettled entry was written, not yet journalled
        self._lock = asyncio.Lock()

    async def setup(self) -> None:
        """Forget the journals of writers long gone."""
        cutoff = dt.datetime.now(dt.UTC) - HEAD_MAX_AGE
        async for head in self.head_docs.find({}):
            if head.get("at") is None or head["at"] < cutoff:
                await self.entries.delete_many({"writer": head["_id"]})
                await self.head_docs.delete_one({"_id": head["_id"]})

    def note(self, vins: Iterable[str]) -> None:
        """The unsettled entries of ``vins`` were written (or deleted): the next flush names them."""
        self._noted.update(vins)

    async def flush(self) -> None:
        """Name the VINs noted so far in one journal entry, then move the head past it.

        The entry is written after the unsettled entries it names, and the head
        after the entry, so a reader that sees a head finds every change up to
        it. A crash before the journal write leaves a change unsaid until the
        readers' next whole read (``worklists.RELOAD_S``). Never raises: the
        fold it follows is done.
        """
        async with self._lock:
            if not self._noted:
                return
            vins, self._noted = sorted(self._noted), set()
            n, now = self._n + 1, dt.datetime.now(dt.UTC)
            try:
                await self.entries.insert_one(
                    {"_id": journal_id(self.writer, n), "writer": self.writer, "vins": vins, "at": now}
                )
                await self.head_docs.replace_one({"_id": self.writer}, {"n": n, "at": now}, upsert=True)
            except Exception:  # the database went away: the next flush journals these again
                self._noted.update(vins)
                log.warning("status journal write failed; kept %d VINs for the next one", len(vins))
                return
            self._n = n
            if n > JOURNAL_KEEP:
                await self.entries.delete_one({"_id": journal_id(self.writer, n - JOURNAL_KEEP)})

    async def heads(self) -> dict[str, int]:
        """How far each writing process's journal goes."""
        return {doc["_id"]: int(doc["n"]) async for doc in self.head_docs.find({})}

    async def named(self, writer: str, first: int, last: int) -> set[str] | None:
        """The VINs a writer's journal entries ``first``..``last`` name; None when one is gone."""
        ids = [journal_id(writer, n) for n in range(first, last + 1)]
        docs = await by_ids(self.entries, ids)
        if len(docs) < len(ids):
            return None
        return {vin for doc in docs.values() for vin in doc["vins"]}
