"""The workspace_audit collection: every action of a person, with who, when and what changed.

Every write and read is by ``_id``, and nothing relies on two writers updating
one document (see shared.mongo; measured here on FerretDB 1.24: concurrent
``$inc`` by findAndModify handed out one number several times, and of twenty
concurrent ``$set`` on one document four survived). So:

- an action is one document, ``_id`` = ``<target>#<k>``, k = 1, 2, 3 … per
  target, taken by ``insert_one``: the unique ``_id`` is the one check the server
  makes atomically, so a writer that loses a number to another takes the next;
- ``workspace_audit_heads`` keeps per target (``_id`` = the target) the last k
  written, as a hint only: a reader or writer starts from it and steps on by
  ``_id`` while entries exist, so a hint left behind by a race or a crash costs
  a read, never an entry.

Numbers have no gaps (a writer takes the first free one above the hint, and a
hint is only ever a number taken), so a page reads its last ``limit`` entries
by ``_id`` and the whole history of a target without scanning the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.workspace.identity import AuditEntry, Person
from shared.mongo import MongoDoc

COLLECTION = "workspace_audit"
CHANGE_MAX = 32_000  # characters of one change as JSON: an entry stays small
MAX_PROBES = 1_000  # numbers a writer tries above the hint before it gives up (a fault, not contention)


class AuditLog:
    """Records people's actions and reads them back per target, newest first."""

    def __init__(
        self, collection: AsyncCollection[MongoDoc], heads: AsyncCollection[MongoDoc] | None = None
    ) -> None:
        self.collection = collection
        self.heads = heads if heads is not None else collection.database[f"{collection.name}_heads"]

    async def record(
        self,
        person: Person | str,
        action: str,
        target: str,
        change: Mapping[str, Any],
        at: dt.datetime,
    ) -> AuditEntry:
        """Keep that ``person`` did ``action`` on ``target`` at ``at``, changing ``change``.

        ``change`` is kept as JSON text (values JSON cannot hold are written as
        text), so any key a change names (an IVI path, a dotted field) is safe.
        """
        name = person.name if isinstance(person, Person) else person
        if not name or not action or not target:
            raise ValueError("an audit entry needs a person, an action and a target")
        if at.tzinfo is None:
            raise ValueError("an audit time needs its time zone")
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # what BSON keeps: milliseconds
        change_json = json.dumps(change, sort_keys=True, ensure_ascii=False, default=str)
        if len(change_json) > CHANGE_MAX:
            raise ValueError(f"an audit change is at most {CHANGE_MAX} characters of JSON")
        document = {"person": name, "action": action, "target": target, "change": change_json, "at": at}
        number = await self._head(target) + 1
        for _ in range(MAX_PROBES):
            try:
                await self.collection.insert_one({"_id": _entry_id(target, number), "k": number, **document})
            except DuplicateKeyError:
                number += 1  # another writer took this number: the next one
                continue
            await self._advance(target, number)
            return _entry(document)
        raise RuntimeError(f"audit of {target!r}: {MAX_PROBES} numbers above the hint were all taken")

    async def for_target(self, target: str, limit: int = 50) -> list[AuditEntry]:
        """The last ``limit`` actions on ``target``, newest first: ``limit`` reads by ``_id``, overlapped."""
        top = await self._top(target)
        numbers = range(top, max(top - limit, 0), -1)
        found = await asyncio.gather(
            *(self.collection.find_one({"_id": _entry_id(target, k)}) for k in numbers)
        )
        documents = [document for document in found if document is not None]
        documents.sort(key=lambda document: (document["at"], document["k"]), reverse=True)
        return [_entry(document) for document in documents]

    async def history(self, target: str) -> list[AuditEntry]:
        """Every action on ``target``, newest first."""
        return await self.for_target(target, limit=await self._top(target))

    async def _head(self, target: str) -> int:
        head = await self.heads.find_one({"_id": target})
        return int(head["n"]) if head is not None else 0

    async def _top(self, target: str) -> int:
        """The target's last number: from the hint, stepping on while later entries exist."""
        top = await self._head(target)
        while await self.collection.find_one({"_id": _entry_id(target, top + 1)}, {"_id": 1}) is not None:
            top += 1
        return top

    async def _advance(self, target: str, number: int) -> None:
        """Raise the hint to ``number``; losing this write to a race only leaves the hint behind."""
        # Two first entries of a target may upsert its head at once: the other one made it.
        with contextlib.suppress(DuplicateKeyError):
            await self.heads.update_one({"_id": target}, {"$max": {"n": number}}, upsert=True)


def _entry_id(target: str, number: int) -> str:
    return f"{target}#{number}"  # k holds no '#', so the id splits from the right without doubt


def _entry(document: MongoDoc) -> AuditEntry:
    return AuditEntry(
        person=document["person"],
        action=document["action"],
        target=document["target"],
        change=json.loads(document["change"]),
        at=document["at"],
    )
