"""``coc users add|list|remove``: the workspace's local users (``services.workspace.adapters.users``).

Passwords come from standard input (``--password-stdin``) or from two prompts
on a terminal; they never appear on the command line, where ``ps`` and shell
histories would show them. Each change is kept in the workspace's audit log,
named after the operating-system user who ran the command.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from cli.errors import EXIT_STATUS, BadInput, CommandError

if TYPE_CHECKING:
    from services.workspace.adapters.audit import AuditLog
    from services.workspace.adapters.users import UserStore
    from services.workspace.identity import IdentityError, Person

ROLES_HELP = "production, type-approval, reviewer, compliance-lead, integration or viewer"
USERS_EXIT = (
    "Exit status: 0 done; 1 the name is taken or unknown, or MongoDB does not answer; "
    "2 bad command line or input (a name, role or password that breaks its rule)."
)
T = TypeVar("T")


def register(coc: click.Group) -> None:
    coc.add_command(users)


@click.group(help="People who sign in to the workspace.")
def users() -> None:
    pass


@users.command(epilog=USERS_EXIT)
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    metavar="ROLE",
    help=f"a role ({ROLES_HELP}); repeat for several",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="read the password from the first line of standard input (else: prompt twice)",
)
def add(name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create a user with one or more roles.

    NAME: letters, digits, spaces and . - ' (1 to 64).

    The password comes from standard input (--password-stdin) or from two prompts
    at a terminal, never from the command line, where ps and shell histories
    would show it. The change is kept in the workspace's audit log.
    """
    from services.workspace.identity import IdentityError, check_name, check_password, check_roles

    try:
        name, checked = check_name(name), check_roles(roles)
        password = check_password(read_password(password_stdin))
        person = _run(lambda store, audit: _add(store, audit, name, sorted(checked), password))
    except IdentityError as exc:
        raise identity_error(exc) from None
    print(f"added {person.name} ({', '.join(sorted(role.value for role in person.roles))})")


@users.command("list", epilog=EXIT_STATUS)
@click.option("--json", "as_json", is_flag=True, help="the users and their roles as JSON")
def list_users(as_json: bool) -> None:
    """Every user with their roles."""
    from cli.output import rows, show, show_json, table

    people = _run(lambda store, _audit: store.list())
    if as_json:
        show_json([{"name": p.name, "roles": sorted(role.value for role in p.roles)} for p in people])
        return
    if not people:
        print("no users yet: coc users add NAME --role ROLE")
        return
    cells = ((p.name, ", ".join(sorted(role.value for role in p.roles))) for p in people)
    show(rows(table("name", "roles", show_header=False), cells))


@users.command(epilog=USERS_EXIT)
@click.argument("name")
def remove(name: str) -> None:
    """Delete a user; the change is kept in the workspace's audit log."""
    from services.workspace.identity import IdentityError, check_name

    try:
        name = check_name(name)
        _run(lambda store, audit: _remove(store, audit, name))
    except IdentityError as exc:
        raise identity_error(exc) from None
    print(f"removed {name}")


def identity_error(exc: IdentityError) -> CommandError:
    """A value that breaks its rule is bad input (2); a name taken or unknown is a failure (1)."""
    from services.workspace.identity import InvalidField

    return BadInput(str(exc)) if isinstance(exc, InvalidField) else CommandError(str(exc))


def read_password(from_stdin: bool) -> str:
    """The password: one line of standard input, or typed twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BadInput("password: standard input is not a terminal; use --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise BadInput("password: the two entries differ")
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
    import asyncio

    from pymongo.errors import PyMongoError

    from services.workspace.adapters.audit import COLLECTION as AUDIT
    from services.workspace.adapters.audit import AuditLog
    from services.workspace.adapters.sessions import COLLECTION as SESSIONS
    from services.workspace.adapters.sessions import SessionStore
    from services.workspace.adapters.users import COLLECTION as USERS
    from services.workspace.adapters.users import UserStore
    from services.workspace.settings import WorkspaceSettings
    from shared.mongo import database, make_client
    from shared.settings import CocSettings

    settings = CocSettings()

    async def session() -> T:
        client = make_client(settings)
        try:
            db = database(client, settings)
            sessions = SessionStore(db[SESSIONS], WorkspaceSettings().session_rules())
            return await work(UserStore(db[USERS], sessions=sessions), AuditLog(db[AUDIT]))
        finally:
            await client.close()

    try:
        return asyncio.run(session())
    except PyMongoError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        host, port = settings.mongo_host_port  # not the URL: it may hold a password
        raise CommandError(f"MongoDB at {host}:{port}: {first[:200]} (is the stack up?)") from None
