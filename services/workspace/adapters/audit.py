"""The workspace's audit log: every action of a person, with who, when and what changed, chained by hash.

Two collections, every write and read by ``_id`` (see shared.mongo; measured
on FerretDB 1.24: no transactions, concurrent ``$inc`` by findAndModify handed
out one number several times, of twenty concurrent ``$set`` on one document four
survived, and a query on any other field than ``_id`` scans the collection):

- ``workspace_audit_chain`` holds the entries, ``_id`` = the entry's sequence
  number over the whole log, each with the hash of the entry before it (the
  rules are in ``services.workspace.audit_chain``). The unique ``_id`` is the
  one check the server makes atomically, so two writers (two workspace
  instances, or ``coc users``) cannot both take a number: the loser re-reads the
  new head, links to it and tries again after a short random back-off. The
  chain cannot fork. ``workspace_audit_chain_head`` keeps the last number
  written, as a hint only: a writer steps on by ``_id`` while entries exist.
- ``workspace_audit`` indexes the entries per target, ``_id`` = ``<target>#<k>``,
  k = 1, 2, 3 … per target, each naming its entry's number; numbers are taken
  the same way (the first free ``_id`` above the hint in ``workspace_audit_heads``),
  so a page reads its last ``limit`` actions without scanning the log.

Entries written before the log was chained are documents of ``workspace_audit``
that hold the action themselves and no number: pages still show them, and the
verifier counts them and says the chain starts after them (rewriting history to
chain them now would claim an order and times nobody can vouch for).

One write costs about eight single-document operations (about 15 ms here),
which suits people's actions; a writer that crashes between the chain entry
and its per-target index leaves the action in the chain (what is verified and
exported) and off its target's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.workspace.audit_chain import GENESIS, ChainEntry, Verdict, link, verify
from services.workspace.identity import AuditEntry, Person
from shared.mongo import MongoDoc

COLLECTION = "workspace_audit"
CHAIN = f"{COLLECTION}_chain"
CHANGE_MAX = 32_000  # characters of one change as JSON: an entry stays small
MAX_PROBES = 1_000  # numbers a writer tries above a hint before it gives up (a fault, not contention)
MAX_TRIES = 60  # times a writer loses the next chain number to another before it gives up
BACKOFF_S = (0.002, 0.1)  # the first wait after a lost number, and the most (doubling, randomised)
HEAD_ID = "head"


class AuditLog:
    """Records people's actions in the chain and reads them back per target, newest first."""

    def __init__(
        self, collection: AsyncCollection[MongoDoc], heads: AsyncCollection[MongoDoc] | None = None
    ) -> None:
        db = collection.database
        self.collection = collection
        self.heads = heads if heads is not None else db[f"{collection.name}_heads"]
        self.chain = db[f"{collection.name}_chain"]
        self.chain_head = db[f"{collection.name}_chain_head"]

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
        A ``Person``'s roles are kept with the entry; a name alone (an operator's
        command) has none.
        """
        name = person.name if isinstance(person, Person) else person
        role = ",".join(sorted(r.value for r in person.roles)) if isinstance(person, Person) else ""
        if not name or not action or not target:
            raise ValueError("an audit entry needs a person, an action and a target")
        if at.tzinfo is None:
            raise ValueError("an audit time needs its time zone")
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # what BSON keeps: milliseconds
        details = json.dumps(change, sort_keys=True, ensure_ascii=False, default=str)
        if len(details) > CHANGE_MAX:
            raise ValueError(f"an audit change is at most {CHANGE_MAX} characters of JSON")
        entry = await self._append(
            lambda seq, previous: link(
                seq, previous, person=name, role=role, action=action, target=target, details=details, at=at
            )
        )
        await self._index(target, entry.seq)
        return _action(entry)

    async def for_target(self, target: str, limit: int = 50) -> list[AuditEntry]:
        """The last ``limit`` actions on ``target``, newest first: reads by ``_id``, overlapped."""
        top = await self._top(target)
        numbers = range(top, max(top - limit, 0), -1)
        found = await asyncio.gather(
            *(self.collection.find_one({"_id": _entry_id(target, k)}) for k in numbers)
        )
        indexed = [document for document in found if document is not None]
        chained = await asyncio.gather(
            *(self.chain.find_one({"_id": document["seq"]}) for document in indexed if "seq" in document)
        )
        by_seq = {document["_id"]: document for document in chained if document is not None}
        actions: list[tuple[int, AuditEntry]] = []
        for document in indexed:
            if "seq" not in document:  # written before the log was chained
                actions.append((document["k"], _older(document)))
            elif document["seq"] in by_seq:  # an entry deleted from the chain: the verifier names it
                actions.append((document["k"], _action(_chain_entry(by_seq[document["seq"]]))))
        actions.sort(key=lambda pair: (pair[1].at, pair[0]), reverse=True)
        return [action for _k, action in actions]

    async def history(self, target: str) -> list[AuditEntry]:
        """Every action on ``target``, newest first."""
        return await self.for_target(target, limit=await self._top(target))

    async def entries(self) -> list[ChainEntry]:
        """The whole chain in sequence order: one scan, for the verifier and an export."""
        return (await self._scan())[0]

    async def verification(self) -> tuple[list[ChainEntry], Verdict]:
        """The whole chain, and what the verifier finds in it (also against the head's hint)."""
        chained, foreign = await self._scan()
        head = await self.chain_head.find_one({"_id": HEAD_ID})
        older = await self.collection.count_documents({"seq": {"$exists": False}})
        return chained, verify(chained, int(head["n"]) if head else 0, older, foreign)

    async def _scan(self) -> tuple[list[ChainEntry], list[str]]:
        """The entries in sequence order, and the ``_id`` of each document that cannot be one (no number)."""
        found: list[ChainEntry] = []
        foreign: list[str] = []
        async for document in self.chain.find({}):
            number = document["_id"]
            if isinstance(number, int) and not isinstance(number, bool):
                found.append(_chain_entry(document))
            else:
                foreign.append(repr(number)[:100])
        found.sort(key=lambda entry: entry.seq)
        return found, foreign

    # -- the chain -------------------------------------------------------------------------------

    async def _append(self, make: Callable[[int, str], ChainEntry]) -> ChainEntry:
        """Insert ``make(seq, previous)`` as the chain's next entry, retrying while others take numbers."""
        seq, previous = await self._chain_top()
        for attempt in range(MAX_TRIES):
            entry = make(seq + 1, previous)
            try:
                await self.chain.insert_one(_chain_document(entry))
            except DuplicateKeyError:
                first, most = BACKOFF_S
                await asyncio.sleep(random.uniform(0.5, 1.0) * min(most, first * 2**attempt))
                seq, previous = await self._step_on(seq, previous)
                continue
            with contextlib.suppress(DuplicateKeyError):  # two first writers may upsert the head at once
                await self.chain_head.update_one({"_id": HEAD_ID}, {"$max": {"n": entry.seq}}, upsert=True)
            return entry
        raise RuntimeError(f"the audit log: the next number was taken by others {MAX_TRIES} times running")

    async def _chain_top(self) -> tuple[int, str]:
        """The last entry's number and hash: from the hint, stepping on while later entries exist.

        Should the hint's entry be gone (deleted by hand), the next entry still
        takes the number after the hint, linked to the last entry below that is
        there: the gap stays for the verifier to name, never refilled.
        """
        head = await self.chain_head.find_one({"_id": HEAD_ID})
        top = int(head["n"]) if head is not None else 0
        for seq in range(top, max(top - MAX_PROBES, 0), -1):
            document = await self.chain.find_one({"_id": seq}, {"sha256": 1})
            if document is not None:
                return await self._step_on(top if seq < top else seq, str(document["sha256"]))
        return await self._step_on(top, GENESIS)

    async def _step_on(self, seq: int, previous: str) -> tuple[int, str]:
        """From entry ``seq`` (hash ``previous``) on to the last entry that exists."""
        for _ in range(MAX_PROBES):
            document = await self.chain.find_one({"_id": seq + 1}, {"sha256": 1})
            if document is None:
                return seq, previous
            seq, previous = seq + 1, str(document["sha256"])
        raise RuntimeError(f"the audit log: {MAX_PROBES} entries above the head's hint")

    # -- the index per target --------------------------------------------------------------------

    async def _index(self, target: str, seq: int) -> None:
        number = await self._head(target) + 1
        for _ in range(MAX_PROBES):
            try:
                await self.collection.insert_one(
                    {"_id": _entry_id(target, number), "k": number, "target": target, "seq": seq}
                )
            except DuplicateKeyError:
                number += 1  # another writer took this number: the next one
                continue
            await self._advance(target, number)
            return
        raise RuntimeError(f"audit of {target!r}: {MAX_PROBES} numbers above the hint were all taken")

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


def _chain_document(entry: ChainEntry) -> MongoDoc:
    return {
        "_id": entry.seq,
        "person": entry.person,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "change": entry.details,
        "at": entry.at,
        "previous": entry.previous,
        "sha256": entry.sha256,
    }


def _chain_entry(document: MongoDoc) -> ChainEntry:
    """An entry as stored; a field someone removed reads as empty, so the hash check names the entry."""
    at = document.get("at")
    return ChainEntry(
        seq=int(document["_id"]),
        person=str(document.get("person", "")),
        role=str(document.get("role", "")),
        action=str(document.get("action", "")),
        target=str(document.get("target", "")),
        details=str(document.get("change", "")),
        at=at if isinstance(at, dt.datetime) else dt.datetime.min.replace(tzinfo=dt.UTC),
        previous=str(document.get("previous", "")),
        sha256=str(document.get("sha256", "")),
    )


def _action(entry: ChainEntry) -> AuditEntry:
    try:
        change = json.loads(entry.details)
    except ValueError:
        change = {"unreadable": entry.details}
    return AuditEntry(
        person=entry.person, action=entry.action, target=entry.target, change=change, at=entry.at
    )


def _older(document: MongoDoc) -> AuditEntry:
    """An action written before the log was chained, which holds it itself."""
    return AuditEntry(
        person=document["person"],
        action=document["action"],
        target=document["target"],
        change=json.loads(document["change"]),
        at=document["at"],
    )
