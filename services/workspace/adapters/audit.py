"""The workspace_audit collection: every action of a person, with who, when and what changed.

Two collections, every write and the page's read by ``_id`` (see shared.mongo):

- ``workspace_audit``: the complete log, one document per action, never
  trimmed, ``_id`` = target, time and a random suffix; kept for export and
  investigation, read only by ``history`` (a scan).
- ``workspace_audit_recent``: per target one document, ``_id`` = the target,
  holding its last ``KEEP`` entries in a ring of slots. Each record takes the
  next number of its target with ``$inc`` (atomic per document) and writes
  slot ``number % KEEP`` with ``$set``, so concurrent records never overwrite
  each other and no array operator FerretDB 1.24 may lack (``$slice``,
  ``$position``) is needed. The page of a target reads this one document.

The log entry is written first: a crash before the ring write leaves the action
in the log, and at worst an older entry in the page's slot.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.workspace.identity import AuditEntry, Person
from shared.mongo import MongoDoc

COLLECTION = "workspace_audit"
KEEP = 100  # entries per target a page can show without reading the whole log
CHANGE_MAX = 32_000  # characters of one change as JSON: a hundred of them stay far below 16 MB


class AuditLog:
    """Records people's actions and reads them back per target, newest first."""

    def __init__(
        self, collection: AsyncCollection[MongoDoc], recent: AsyncCollection[MongoDoc] | None = None
    ) -> None:
        self.collection = collection
        self.recent = recent if recent is not None else collection.database[f"{collection.name}_recent"]

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
        entry_id = f"{target}|{at.astimezone(dt.UTC):%Y%m%dT%H%M%S.%fZ}|{secrets.token_hex(4)}"
        await self.collection.insert_one({"_id": entry_id, **document})
        number = await self._next_number(target)
        await self.recent.update_one(
            {"_id": target}, {"$set": {f"slots.s{number % KEEP}": {"seq": number, **document}}}
        )
        return _entry(document)

    async def _next_number(self, target: str) -> int:
        """The target's next entry number, taken atomically by ``$inc`` on its document."""
        for _ in range(2):
            try:
                counter = await self.recent.find_one_and_update(
                    {"_id": target},
                    {"$inc": {"n": 1}},
                    upsert=True,  # no projection: FerretDB 1.24's findAndModify refuses its "fields"
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue  # two first records of a target both upserted: the other insert won, $inc again
            return int(counter["n"]) if counter is not None else 1
        raise RuntimeError(f"audit counter of {target!r}: the upsert kept colliding")

    async def for_target(self, target: str, limit: int = 50) -> list[AuditEntry]:
        """The last ``limit`` actions on ``target``, newest first: one read by ``_id``.

        More than ``KEEP`` entries come from ``history``, which scans the log.
        """
        if limit > KEEP:
            return (await self.history(target))[:limit]
        document = await self.recent.find_one({"_id": target})
        slots = list((document or {}).get("slots", {}).values())
        slots.sort(key=lambda slot: (slot["at"], slot["seq"]), reverse=True)
        return [_entry(slot) for slot in slots[: max(limit, 0)]]

    async def history(self, target: str) -> list[AuditEntry]:
        """Every action on ``target``, newest first: a scan of the whole log (see shared.mongo)."""
        cursor = self.collection.find({"target": target})
        entries = [_entry(document) async for document in cursor]
        return sorted(entries, key=lambda entry: entry.at, reverse=True)


def _entry(document: MongoDoc) -> AuditEntry:
    return AuditEntry(
        person=document["person"],
        action=document["action"],
        target=document["target"],
        change=json.loads(document["change"]),
        at=document["at"],
    )
