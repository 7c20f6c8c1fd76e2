"""The workspace_sessions collection: who is signed in, kept on the server.

One document per session, ``_id`` = ``session_key`` of the cookie's token (its
SHA-256; the token itself is never stored): ``name``, ``roles``, ``source``
(local or oidc), ``created``, ``last_seen``, ``address``, ``agent`` and, for a
company sign-in, the provider's ``id_token`` (the hint its sign-out wants).

Reads are by ``_id`` (see shared.mongo). Last-seen is written at most once a
minute per session (``SessionRules.touch_every``), not on every request: each
write costs FerretDB a few milliseconds. Ended and expired sessions are
deleted: when next asked for, and at each sign-in, which sweeps out every
session that is over, so the collection holds about the live ones (a scan then
is a few documents per person signed in; a person's list is a scan by name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection

from services.workspace.identity import (
    Person,
    PersonRole,
    Session,
    SessionRules,
    SessionSource,
    new_session_token,
    session_key,
)
from shared.mongo import MongoDoc

COLLECTION = "workspace_sessions"
ADDRESS_MAX, AGENT_MAX = 64, 200


class SessionStore:
    """Starts, finds, lists and ends the workspace's sessions under ``rules``."""

    def __init__(self, collection: AsyncCollection[MongoDoc], rules: SessionRules) -> None:
        self.collection = collection
        self.rules = rules

    async def start(
        self,
        person: Person,
        source: SessionSource,
        now: dt.datetime,
        *,
        address: str = "",
        agent: str = "",
        id_token: str = "",
    ) -> str:
        """A new session for ``person``: the token for the cookie (only its hash is kept)."""
        await self._sweep(now)
        token = new_session_token()
        key = session_key(token)
        document: MongoDoc = {
            "_id": key,
            "name": person.name,
            "roles": sorted(role.value for role in person.roles),
            "source": source.value,
            "created": now,
            "last_seen": now,
            "address": address[:ADDRESS_MAX],
            "agent": agent[:AGENT_MAX],
            "id_token": id_token,
        }
        await self.collection.insert_one(document)
        return token

    async def find(self, token: object, now: dt.datetime) -> Session | None:
        """The live session of ``token``, its last-seen moved on when due; None when unknown or over."""
        key = session_key(token)
        document = await self.collection.find_one({"_id": key}) if key else None
        if document is None:
            return None
        session = _session(document)
        if session.over(self.rules, now):
            await self.collection.delete_one({"_id": session.key})
            return None
        if session.needs_touch(self.rules, now):
            await self.collection.update_one({"_id": session.key}, {"$set": {"last_seen": now}})
        return session

    async def of(self, name: str, now: dt.datetime) -> list[Session]:
        """``name``'s live sessions, the newest first."""
        found = [_session(d) async for d in self.collection.find({"name": name})]
        live = [s for s in found if not s.over(self.rules, now)]
        return sorted(live, key=lambda s: s.created, reverse=True)

    async def end(self, key: str, name: str | None = None) -> bool:
        """End the session stored under ``key`` (only when it is ``name``'s, if given); whether one ended."""
        query: MongoDoc = {"_id": key} if name is None else {"_id": key, "name": name}
        result = await self.collection.delete_one(query)
        return result.deleted_count > 0

    async def end_all(self, name: str, source: SessionSource | None = None) -> int:
        """End every session of ``name`` (of one source, if given): a person removed or their roles changed."""
        query: MongoDoc = {"name": name} if source is None else {"name": name, "source": source.value}
        result = await self.collection.delete_many(query)
        return result.deleted_count

    async def _sweep(self, now: dt.datetime) -> None:
        """Delete the sessions that are over: a scan of the live ones, a few per person signed in."""
        for session in [_session(d) async for d in self.collection.find({})]:
            if session.over(self.rules, now):
                await self.collection.delete_one({"_id": session.key})


def _roles(values: Iterable[object]) -> frozenset[PersonRole]:
    known = {role.value for role in PersonRole}
    return frozenset(PersonRole(v) for v in values if isinstance(v, str) and v in known)


def _session(document: MongoDoc) -> Session:
    return Session(
        key=str(document["_id"]),
        name=str(document.get("name", "")),
        roles=_roles(document.get("roles", ())),
        source=SessionSource(document.get("source", SessionSource.LOCAL.value)),
        created=_utc(document["created"]),
        last_seen=_utc(document["last_seen"]),
        address=str(document.get("address", "")),
        agent=str(document.get("agent", "")),
        id_token=str(document.get("id_token", "")),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    """BSON dates come back naive (UTC) unless the client is tz-aware."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
