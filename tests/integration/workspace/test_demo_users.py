"""Demo users for `make demo`: one per role, their sign-in in a private file, made once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from devkit.users import demo_users_file, ensure_demo_users
from services.workspace.adapters.users import COLLECTION, UserStore
from services.workspace.identity import PersonRole
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration


async def test_one_demo_user_per_role_signs_in_with_the_password_in_the_private_file(
    test_db: AsyncDatabase[MongoDoc], tmp_path: Path
) -> None:
    store = UserStore(test_db[COLLECTION])

    users = await ensure_demo_users(store, tmp_path)

    assert {user.role for user in users} == set(PersonRole)
    for user in users:
        person = await store.verify(user.name, user.password)
        assert person is not None and person.roles == {user.role}
    path = demo_users_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(f"{user.name}\t{user.role.value}\t{user.password}" in path.read_text() for user in users)


async def test_a_second_run_keeps_the_users_and_the_file(
    test_db: AsyncDatabase[MongoDoc], tmp_path: Path
) -> None:
    store = UserStore(test_db[COLLECTION])
    first = await ensure_demo_users(store, tmp_path)
    written = demo_users_file(tmp_path).read_text()
    hashes = {doc["_id"]: doc["password_hash"] async for doc in test_db[COLLECTION].find({})}

    again = await ensure_demo_users(store, tmp_path)

    assert again == first
    assert demo_users_file(tmp_path).read_text() == written
    assert {doc["_id"]: doc["password_hash"] async for doc in test_db[COLLECTION].find({})} == hashes


async def test_a_lost_file_gives_the_existing_demo_users_new_passwords(
    test_db: AsyncDatabase[MongoDoc], tmp_path: Path
) -> None:
    store = UserStore(test_db[COLLECTION])
    first = await ensure_demo_users(store, tmp_path)
    demo_users_file(tmp_path).unlink()

    again = await ensure_demo_users(store, tmp_path)

    assert [user.name for user in again] == [user.name for user in first]
    for old, new in zip(first, again, strict=True):
        assert await store.verify(new.name, new.password) is not None
        assert await store.verify(old.name, old.password) is None
