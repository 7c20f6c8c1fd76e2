"""`coc users` against the real FerretDB, run as `cli.main.main` with a database of this test."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Awaitable, Callable

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from cli.main import main
from services.workspace.adapters import sessions as stored
from services.workspace.adapters.audit import COLLECTION, AuditLog
from services.workspace.identity import Person, PersonRole, SessionRules, SessionSource
from shared.mongo import MongoDoc

pytestmark = pytest.mark.integration

Coc = Callable[..., Awaitable[tuple[int, str, str]]]
ADD = ("users", "add")


@pytest.fixture
def coc(
    test_db: AsyncDatabase[MongoDoc], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Coc:
    """`coc ARGS` on this test's database, its standard input given; exit status, output, errors."""
    monkeypatch.setenv("COC_MONGO_DB", test_db.name)

    async def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = await asyncio.to_thread(main, list(argv))  # main runs its own event loop
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


async def test_users_added_with_password_stdin_are_listed_with_roles_and_no_hash(coc: Coc) -> None:
    argv = (*ADD, "Anna Lee", "--role", "reviewer", "--role", "production", "--password-stdin")
    assert await coc(*argv, stdin="correct horse battery\n") == (
        0,
        "added Anna Lee (production, reviewer)\n",
        "",
    )
    assert (await coc(*ADD, "bert", "--role", "viewer", "--password-stdin", stdin="another long one\n"))[
        0
    ] == 0

    code, out, _ = await coc("users", "list")

    assert code == 0
    assert out.splitlines() == ["Anna Lee  production, reviewer", "bert      viewer"]
    assert "argon2" not in out and "correct horse" not in out


async def test_adding_and_removing_a_user_is_audited(coc: Coc, test_db: AsyncDatabase[MongoDoc]) -> None:
    await coc(*ADD, "Anna", "--role", "viewer", "--password-stdin", stdin="long enough pw\n")
    await coc("users", "remove", "Anna")

    entries = await AuditLog(test_db[COLLECTION]).for_target("user:Anna")

    assert [entry.action for entry in entries] == ["user removed", "user added"]
    assert entries[1].change == {"roles": ["viewer"]}
    assert all(entry.person.startswith("cli:") for entry in entries)


async def test_a_short_password_adds_no_one(coc: Coc) -> None:
    code, _, err = await coc(*ADD, "Anna", "--role", "viewer", "--password-stdin", stdin="short\n")

    assert code == 2
    assert err == "coc users: password: must be at least 12 characters\n"
    assert (await coc("users", "list"))[1] == "no users yet: coc users add NAME --role ROLE\n"


async def test_a_taken_name_and_an_unknown_one_are_one_line_each(coc: Coc) -> None:
    argv = (*ADD, "Anna", "--role", "viewer", "--password-stdin")
    assert (await coc(*argv, stdin="long enough pw\n"))[0] == 0

    assert await coc(*argv, stdin="long enough pw\n") == (
        1,
        "",
        "coc users: name: a user named 'Anna' exists already\n",
    )
    assert await coc("users", "remove", "Anna") == (0, "removed Anna\n", "")
    assert await coc("users", "remove", "Anna") == (1, "", "coc users: name: no user named 'Anna'\n")


async def test_removing_a_user_ends_their_sessions_at_once(
    coc: Coc, test_db: AsyncDatabase[MongoDoc]
) -> None:
    rules = SessionRules(idle=dt.timedelta(minutes=30), lifetime=dt.timedelta(hours=10))
    sessions = stored.SessionStore(test_db[stored.COLLECTION], rules)
    await coc(*ADD, "Anna Lee", "--role", "viewer", "--password-stdin", stdin="Kudu plant line 7\n")
    now = dt.datetime.now(dt.UTC)
    token = await sessions.start(Person("Anna Lee", frozenset({PersonRole.VIEWER})), SessionSource.LOCAL, now)
    assert await sessions.find(token, now) is not None

    assert (await coc("users", "remove", "Anna Lee"))[0] == 0

    assert await sessions.find(token, now) is None
