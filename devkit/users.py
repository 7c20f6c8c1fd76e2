"""Demo users for the workspace: one per role, for `make demo` and the browser tests.

Their passwords are generated on this machine and kept only in
``<state_dir>/demo-users.txt`` (mode 0600, beside the stack's other generated
secrets), never in the repository. Running it again keeps the users and the
file; a demo user whose password the file no longer holds gets a new one.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.workspace.adapters.users import UserStore
from services.workspace.identity import PersonRole

FILE_NAME: Final = "demo-users.txt"
HEADER: Final = "# workspace demo users, development only: name<TAB>role<TAB>password\n"


@dataclass(frozen=True)
class DemoUser:
    name: str
    role: PersonRole
    password: str


def demo_name(role: PersonRole) -> str:
    return f"demo-{role.value}"


def demo_users_file(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


async def ensure_demo_users(store: UserStore, state_dir: Path | None = None) -> list[DemoUser]:
    """One demo user per role with their sign-in, made once; written to ``demo-users.txt`` and returned."""
    if state_dir is None:
        from shared.settings import CocSettings

        state_dir = CocSettings().state_dir
    path = demo_users_file(state_dir)
    known = _read(path)
    users: list[DemoUser] = []
    for role in PersonRole:
        name = demo_name(role)
        password = known.get(name)
        if await store.get(name) is None:
            password = password or _new_password()
            await store.add(name, [role], password, created_by="devkit demo")
        elif password is None or await store.verify(name, password) is None:
            password = _new_password()
            await store.set_password(name, password)
        users.append(DemoUser(name, role, password))
    if {user.name: user.password for user in users} != known:
        _write(path, users)
    return users


def _new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and not line.startswith("#"):
            found[fields[0]] = fields[2]
    return found


def _write(path: Path, users: list[DemoUser]) -> None:
    """Replace the file in one step, readable by its owner only from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{user.name}\t{user.role.value}\t{user.password}\n" for user in users]
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")  # created 0600
    try:
        with os.fdopen(handle, "w") as out:
            out.write(HEADER + "".join(lines))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
