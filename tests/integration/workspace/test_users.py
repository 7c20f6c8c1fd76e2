"""Workspace users on the real FerretDB: argon2id hashes, sign-in checks, roles, removal."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from pymongo.asynchronous.database import AsyncDatabase

from services.workspace.adapters.users import COLLECTION, UserStore
from services.workspace.identity import InvalidField, Person, PersonRole, UnknownUser, UserExists
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@pytest.fixture
def store(test_db: AsyncDatabase[MongoDoc]) -> UserStore:
    return UserStore(test_db[COLLECTION])


async def test_an_added_user_signs_in_with_their_password_and_roles(store: UserStore) -> None:
    await store.add("Anna Lee", ["reviewer", "production"], PASSWORD)

    person = await store.verify("Anna Lee", PASSWORD)

    assert person == Person("Anna Lee", frozenset({PersonRole.REVIEWER, PersonRole.PRODUCTION}))


async def test_a_wrong_password_or_an_unknown_name_signs_in_no_one(store: UserStore) -> None:
    await store.add("Anna Lee", ["viewer"], PASSWORD)

    assert await store.verify("Anna Lee", PASSWORD + "!") is None
    assert await store.verify("anna lee", PASSWORD) is None
    assert await store.verify("Nobody", PASSWORD) is None
    assert await store.verify("no|such name", PASSWORD) is None
    assert await store.verify("Anna Lee", "x" * 5000) is None


async def test_the_stored_document_holds_an_argon2id_hash_and_never_the_password(
    store: UserStore, test_db: AsyncDatabase[MongoDoc]
) -> None:
    await store.add("Anna Lee", ["viewer"], PASSWORD, created_by="cli:ops")

    document = await test_db[COLLECTION].find_one({"_id": "Anna Lee"})

    assert document is not None
    assert document["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in repr(document)
    assert document["roles"] == ["viewer"]
    assert document["created_by"] == "cli:ops" and document["created_at"] is not None


async def test_a_name_is_taken_once(store: UserStore) -> None:
    await store.add("Anna Lee", ["viewer"], PASSWORD)

    with pytest.raises(UserExists, match=r"^name: "):
        await store.add("Anna Lee", ["reviewer"], "another long password")

    assert await store.verify("Anna Lee", PASSWORD) is not None  # the first one is untouched


async def test_bad_input_is_refused_before_anything_is_stored(store: UserStore) -> None:
    with pytest.raises(InvalidField, match=r"^password: "):
        await store.add("Anna Lee", ["viewer"], "short")
    with pytest.raises(InvalidField, match=r"^role: "):
        await store.add("Anna Lee", ["root"], PASSWORD)

    assert await store.list() == []


async def test_list_get_set_roles_and_remove(store: UserStore) -> None:
    await store.add("bert", ["viewer"], PASSWORD)
    await store.add("Anna", ["compliance-lead"], PASSWORD)

    assert [person.name for person in await store.list()] == ["Anna", "bert"]
    await store.set_roles("bert", ["reviewer", "viewer"])
    assert await store.get("bert") == Person("bert", frozenset({PersonRole.REVIEWER, PersonRole.VIEWER}))

    await store.remove("bert")

    assert await store.get("bert") is None
    assert await store.verify("bert", PASSWORD) is None
    with pytest.raises(UnknownUser):
        await store.remove("bert")
    with pytest.raises(UnknownUser):
        await store.set_roles("bert", ["viewer"])


async def test_a_hash_made_with_older_parameters_is_replaced_at_the_next_sign_in(
    test_db: AsyncDatabase[MongoDoc],
) -> None:
    weak = UserStore(test_db[COLLECTION], PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    await weak.add("Anna", ["viewer"], PASSWORD)
    before = await test_db[COLLECTION].find_one({"_id": "Anna"})

    current = UserStore(test_db[COLLECTION])
    assert await current.verify("Anna", PASSWORD) is not None

    after = await test_db[COLLECTION].find_one({"_id": "Anna"})
    assert before is not None and after is not None
    assert "m=8192,t=1,p=1" in before["password_hash"]
    assert after["password_hash"] != before["password_hash"]
    assert not current.hasher.check_needs_rehash(after["password_hash"])
    assert await current.verify("Anna", PASSWORD) is not None
