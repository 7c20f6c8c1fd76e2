"""The workspace_users collection: local users, their roles and their argon2id password hashes.

One document per person, ``_id`` = the name (every read and write is by
``_id``, see shared.mongo): ``roles``, ``password_hash`` (argon2id in the PHC
string format, RFC 9106; never the password), ``created_at``, ``created_by``.
Hashing costs tens of milliseconds of CPU by design, so it runs in a worker
thread and never stalls the event loop that serves the pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.workspace.adapters.sessions import SessionStore
from services.workspace.identity import (
    PASSWORD_MAX,
    InvalidField,
    Person,
    PersonRole,
    SessionSource,
    UnknownUser,
    UserExists,
    check_name,
    check_password,
    check_roles,
)
from shared.mongo import MongoDoc

COLLECTION = "workspace_users"


class UserStore:
    """Adds, checks and lists the workspace's local users.

    ``hasher`` defaults to argon2-cffi's ``PasswordHasher()``: argon2id with the
    RFC 9106 low-memory profile. A stored hash made with other parameters is
    replaced on the next successful sign-in (``check_needs_rehash``).
    """

    def __init__(
        self,
        collection: AsyncCollection[MongoDoc],
        hasher: PasswordHasher | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.collection = collection
        self.hasher = hasher or PasswordHasher()
        self.sessions = sessions  # a person removed or given other roles is signed out at once
        self._dummy_hash: str | None = None

    async def add(
        self,
        name: str,
        roles: Iterable[str],
        password: str,
        *,
        created_by: str = "coc users",
        now: dt.datetime | None = None,
    ) -> Person:
        """Create a user; ``InvalidField`` for a bad name, role or password, ``UserExists`` for a taken name."""
        person = Person(check_name(name), check_roles(roles))
        password_hash = await asyncio.to_thread(self.hasher.hash, check_password(password))
        document = {
            "_id": person.name,
            "roles": _sorted(person.roles),
            "password_hash": password_hash,
            "created_at": now or dt.datetime.now(dt.UTC),
            "created_by": created_by,
        }
        try:
            await self.collection.insert_one(document)
        except DuplicateKeyError:
            raise UserExists(f"name: a user named {person.name!r} exists already") from None
        return person

    async def verify(self, name: str, password: str) -> Person | None:
        """The person when ``password`` is theirs, else None; never raises on what a visitor typed.

        An unknown or malformed name costs one hash check too (against a dummy
        hash), so the answer's time does not tell which names exist.
        """
        document = await self._find(name)
        if document is None or not isinstance(password, str) or len(password) > PASSWORD_MAX:
            await self._check(await self._dummy(), password if isinstance(password, str) else "")
            return None
        stored = document.get("password_hash", "")
        if not await self._check(stored, password):
            return None
        if self.hasher.check_needs_rehash(stored):
            fresh = await asyncio.to_thread(self.hasher.hash, password)
            await self.collection.update_one({"_id": document["_id"]}, {"$set": {"password_hash": fresh}})
        return _person(document)

    async def get(self, name: str) -> Person | None:
        document = await self._find(name)
        return _person(document) if document is not None else None

    async def list(self) -> list[Person]:
        """Every user by name: a scan, fine for the tens of people a plant has (see shared.mongo)."""
        cursor = self.collection.find({}, {"roles": 1})
        return sorted([_person(document) async for document in cursor], key=lambda p: p.name.casefold())

    async def set_roles(self, name: str, roles: Iterable[str]) -> Person:
        person = Person(check_name(name), check_roles(roles))
        result = await self.collection.update_one(
            {"_id": person.name}, {"$set": {"roles": _sorted(person.roles)}}
        )
        if result.matched_count == 0:
            raise UnknownUser(f"name: no user named {person.name!r}")
        await self._sign_out(person.name)
        return person

    async def set_password(self, name: str, password: str) -> None:
        key = check_name(name)
        password_hash = await asyncio.to_thread(self.hasher.hash, check_password(password))
        result = await self.collection.update_one({"_id": key}, {"$set": {"password_hash": password_hash}})
        if result.matched_count == 0:
            raise UnknownUser(f"name: no user named {key!r}")

    async def remove(self, name: str) -> None:
        key = check_name(name)
        result = await self.collection.delete_one({"_id": key})
        if result.deleted_count == 0:
            raise UnknownUser(f"name: no user named {name!r}")
        await self._sign_out(key)

    async def _sign_out(self, name: str) -> None:
        """End ``name``'s password sessions (a company sign-in of the same name is another account)."""
        if self.sessions is not None:
            await self.sessions.end_all(name, SessionSource.LOCAL)

    async def _find(self, name: str) -> MongoDoc | None:
        try:
            key = check_name(name) if isinstance(name, str) else None
        except InvalidField:
            key = None
        return await self.collection.find_one({"_id": key}) if key is not None else None

    async def _check(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self.hasher.hash, "not a password of anyone")
        return self._dummy_hash


def _sorted(roles: frozenset[PersonRole]) -> list[str]:
    return sorted(role.value for role in roles)


def _person(document: MongoDoc) -> Person:
    """A stored role this version does not know gives no right (it may come from a newer version)."""
    known = {role.value for role in PersonRole}
    roles = frozenset(PersonRole(role) for role in document.get("roles", ()) if role in known)
    return Person(name=document["_id"], roles=roles)
