"""The status read model's adapters on one database, made together: what ``app.py`` (and the benches) wire.

- ``records`` (``writer``): folds status events into the record documents and
  their entries, and reads them by VIN;
- ``journal``: which unsettled entries this process wrote, for the lists;
- ``counters``: the board's counters, moved by the writer, and their recount;
- ``listed`` (``worklists.UnsettledEntries``): what a ``Worklists`` reads,
  beside the journal.

The collections and their documents: ``documents``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection

from services.status.adapters.archived import ArchivedLanes
from services.status.adapters.counters import Counters, Sleep
from services.status.adapters.documents import Collections
from services.status.adapters.journal import Journal
from services.status.adapters.worklists import UnsettledEntries
from services.status.adapters.writer import RecordWriter
from shared.mongo import MongoDoc


@dataclass(frozen=True)
class StatusStore:
    """The parts of one read model, sharing its collections."""

    kept: Collections
    journal: Journal
    counters: Counters
    records: RecordWriter
    listed: UnsettledEntries
    archived: ArchivedLanes

    @classmethod
    def on(
        cls, records: AsyncCollection[MongoDoc], sleep: Sleep = asyncio.sleep, zone: dt.tzinfo = dt.UTC
    ) -> StatusStore:
        """The parts on ``records`` and the collections beside it (``documents.Collections``).

        ``sleep`` is how the recount waits out its grace (a test passes a fake clock); ``zone``
        is the plant's time zone, whose dates the archived list is searched by.
        """
        kept = Collections.beside(records)
        journal = Journal(kept.journal, kept.heads)
        counters = Counters(kept.counts, kept.index, kept.unsettled, sleep, kept.lanes, zone)
        archived = ArchivedLanes(kept.runs, kept.lanes, kept.index, zone)
        return cls(
            kept,
            journal,
            counters,
            RecordWriter(kept, journal, counters, archived),
            UnsettledEntries(kept.unsettled),
            archived,
        )

    async def setup(self) -> None:
        """Forget the journals of writers long gone; indexes for the recount, where the server uses them."""
        await self.journal.setup()
        await self.counters.setup()
