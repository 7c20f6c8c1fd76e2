"""Sessions on the real FerretDB: kept by the hash of their token, ended by sign-out, expiry, removal or new roles."""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.workspace.adapters import sessions as stored
from services.workspace.adapters.users import COLLECTION, UserStore
from services.workspace.identity import Person, PersonRole, SessionRules, SessionSource, session_key
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
RULES = SessionRules(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=10))
PASSWORD = "correct horse battery"
ANNA = Person("Anna Lee", frozenset({PersonRole.REVIEWER}))


@pytest.fixture
def sessions(test_db: AsyncDatabase[MongoDoc]) -> stored.SessionStore:
    return stored.SessionStore(test_db[stored.COLLECTION], RULES)


async def test_a_session_is_stored_under_its_tokens_hash_and_found_until_it_ends(
    sessions: stored.SessionStore, test_db: AsyncDatabase[MongoDoc]
) -> None:
    token = await sessions.start(ANNA, SessionSource.LOCAL, T0, address="10.0.0.7", agent="Firefox")

    (document,) = [d async for d in test_db[stored.COLLECTION].find({})]
    assert document["_id"] == session_key(token) and token not in str(document)
    found = await sessions.find(token, T0 + dt.timedelta(minutes=5))
    assert found is not None and found.person == ANNA and found.address == "10.0.0.7"
    assert found.last_seen == T0  # as read; the store moved it on
    again = await sessions.find(token, T0 + dt.timedelta(minutes=6))
    assert again is not None and again.last_seen == T0 + dt.timedelta(minutes=5)

    assert await sessions.end(found.key)
    assert await sessions.find(token, T0 + dt.timedelta(minutes=7)) is None


async def test_an_idle_session_is_deleted_when_next_asked_for(
    sessions: stored.SessionStore, test_db: AsyncDatabase[MongoDoc]
) -> None:
    token = await sessions.start(ANNA, SessionSource.OIDC, T0, id_token="a.b.c")

    assert await sessions.find(token, T0 + dt.timedelta(minutes=31)) is None
    assert [d async for d in test_db[stored.COLLECTION].find({})] == []


async def test_removing_a_person_or_changing_their_roles_ends_their_password_sessions(
    sessions: stored.SessionStore, test_db: AsyncDatabase[MongoDoc]
) -> None:
    users = UserStore(test_db[COLLECTION], sessions=sessions)
    await users.add("Anna Lee", ["reviewer"], PASSWORD)
    await users.add("Bert Roe", ["viewer"], PASSWORD)
    first = await sessions.start(ANNA, SessionSource.LOCAL, T0)
    bert = await sessions.start(Person("Bert Roe", frozenset({PersonRole.VIEWER})), SessionSource.LOCAL, T0)

    await users.set_roles("Anna Lee", ["viewer"])
    assert await sessions.find(first, T0) is None
    second = await sessions.start(ANNA, SessionSource.LOCAL, T0)
    await users.remove("Anna Lee")
    assert await sessions.find(second, T0) is None
    assert await sessions.find(bert, T0) is not None
    assert [s.name for s in await sessions.of("Bert Roe", T0)] == ["Bert Roe"]


async def test_each_sign_in_sweeps_out_every_session_that_is_over(
    sessions: stored.SessionStore, test_db: AsyncDatabase[MongoDoc]
) -> None:
    bert = Person("Bert Roe", frozenset({PersonRole.VIEWER}))
    await sessions.start(bert, SessionSource.LOCAL, T0)
    kept = await sessions.start(bert, SessionSource.LOCAL, T0 + dt.timedelta(minutes=20))

    await sessions.start(ANNA, SessionSource.LOCAL, T0 + dt.timedelta(minutes=40))

    names = sorted([d["name"] async for d in test_db[stored.COLLECTION].find({})])
    assert names == ["Anna Lee", "Bert Roe"]
    assert await sessions.find(kept, T0 + dt.timedelta(minutes=40)) is not None
