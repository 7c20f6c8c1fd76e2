"""``coc users add|list|remove``: the workspace's local users (``services.workspace.adapters.users``).

Passwords come from standard input (``--password-stdin``) or from two prompts
on a terminal; they never appear on the command line, where ``ps`` and shell
histories would show them. Each change is kept in the workspace's audit log,
named after the operating-system user who ran the command.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cli.main import CommandError

if TYPE_CHECKING:
    from services.workspace.adapters.audit import AuditLog
    from services.workspace.adapters.users import UserStore
    from services.workspace.identity import Person

ROLES_HELP = "production, type-approval, reviewer, compliance-lead, integration or viewer"
T = TypeVar("T")


def register(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="people who sign in to the workspace")
    users_sub = users.add_subparsers(dest="users_command", required=True)

    add = users_sub.add_parser("add", help="create a user with one or more roles")
    add.add_argument("name", help="the person's name: letters, digits, spaces and . - ' (1-64)")
    add.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        metavar="ROLE",
        help=f"a role ({ROLES_HELP}); repeat for several",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else: prompt twice)",
    )
    add.set_defaults(func=users_add)

    listing = users_sub.add_parser("list", help="every user with their roles")
    listing.set_defaults(func=users_list)

    remove = users_sub.add_parser("remove", help="delete a user")
    remove.add_argument("name")
    remove.set_defaults(func=users_remove)


def users_add(args: argparse.Namespace) -> int:
    from services.workspace.identity import IdentityError, check_name, check_password, check_roles

    try:
        name, roles = check_name(args.name), check_roles(args.roles)
        password = check_password(read_password(args.password_stdin))
        person = _run(lambda store, audit: _add(store, audit, name, sorted(roles), password))
    except IdentityError as exc:
        raise CommandError(str(exc)) from None
    print(f"added {person.name} ({', '.join(sorted(role.value for role in person.roles))})")
    return 0


def users_list(_args: argparse.Namespace) -> int:
    people = _run(lambda store, _audit: store.list())
    if not people:
        print("no users yet: coc users add NAME --role ROLE")
        return 0
    width = max(len(person.name) for person in people)
    for person in people:
        print(f"{person.name:<{width}}  {', '.join(sorted(role.value for role in person.roles))}")
    return 0


def users_remove(args: argparse.Namespace) -> int:
    from services.workspace.identity import IdentityError, check_name

    try:
        name = check_name(args.name)
        _run(lambda store, audit: _remove(store, audit, name))
    except IdentityError as exc:
        raise CommandError(str(exc)) from None
    print(f"removed {name}")
    return 0


def read_password(from_stdin: bool) -> str:
    """The password: one line of standard input, or typed twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CommandError("password: standard input is not a terminal; use --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("password: the two entries differ")
    return first


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in the environment nor in the password database
        return "cli:unknown"


async def _add(store: UserStore, audit: AuditLog, name: str, roles: list[str], password: str) -> Person:
    person = await store.add(name, roles, password, created_by=_operator())
    change = {"roles": roles}
    await audit.record(_operator(), "user added", f"user:{person.name}", change, dt.datetime.now(dt.UTC))
    return person


async def _remove(store: UserStore, audit: AuditLog, name: str) -> None:
    await store.remove(name)
    await audit.record(_operator(), "user removed", f"user:{name}", {}, dt.datetime.now(dt.UTC))


def _run(work: Callable[[UserStore, AuditLog], Awaitable[T]]) -> T:
    """Run ``work(store, audit)`` on the configured MongoDB; a database fault is one line."""
    from pymongo.errors import PyMongoError

    from services.workspace.adapters.audit import COLLECTION as AUDIT
    from services.workspace.adapters.audit import AuditLog
    from services.workspace.adapters.users import COLLECTION as USERS
    from services.workspace.adapters.users import UserStore
    from shared.mongo import database, make_client
    from shared.settings import CocSettings

    settings = CocSettings()

    async def session() -> T:
        client = make_client(settings)
        try:
            db = database(client, settings)
            return await work(UserStore(db[USERS]), AuditLog(db[AUDIT]))
        finally:
            await client.close()

    try:
        return asyncio.run(session())
    except PyMongoError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        host, port = settings.mongo_host_port  # not the URL: it may hold a password
        raise CommandError(f"MongoDB at {host}:{port}: {first[:200]} (is the stack up?)") from None
