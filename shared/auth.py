"""Bearer tokens with roles for every HTTP endpoint.

Writes need the role of who writes (mes, type-approval, reviewer); reads need
any valid token (viewer or a writing role). Tokens come from settings
(``COC_TOKEN_<ROLE>``); the local stack generates them once into
``<state_dir>/tokens.env`` and every process, the CLI included, reads that file
when the environment does not set them. Tokens are never logged.
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import CocSettings


class Role(StrEnum):
    MES = "mes"
    TYPE_APPROVAL = "type-approval"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


def env_name(role: Role) -> str:
    return "COC_TOKEN_" + role.value.upper().replace("-", "_")


def tokens_file(settings: CocSettings) -> Path:
    return settings.state_dir / "tokens.env"


def ensure_tokens(settings: CocSettings) -> Path:
    """Generate one random token per role, once; the file is readable by its owner only."""
    path = tokens_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{env_name(role)}={secrets.token_urlsafe(32)}" for role in Role]
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
    return path


def load_tokens(settings: CocSettings, environ: dict[str, str]) -> dict[Role, str]:
    """Role → token, from the environment first and the generated file second."""
    from_file: dict[str, str] = {}
    path = tokens_file(settings)
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            from_file[name.strip()] = value.strip()
    found = {}
    for role in Role:
        token = environ.get(env_name(role)) or from_file.get(env_name(role))
        if token:
            found[role] = token
    return found


class Authenticator:
    """Resolves a bearer token to its role; FastAPI dependencies come from ``require``."""

    def __init__(self, tokens: dict[Role, str]) -> None:
        self._tokens = tokens
        self._bearer = HTTPBearer(auto_error=False)

    def role_of(self, token: str) -> Role | None:
        for role, expected in self._tokens.items():
            if hmac.compare_digest(token.encode(), expected.encode()):
                return role
        return None

    def require(self, *roles: Role) -> Callable[..., Awaitable[Role]]:
        """A dependency admitting the given roles (any known role when none is given)."""
        bearer = self._bearer

        async def check(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Role:
            if credentials is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "a bearer token is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            role = self.role_of(credentials.credentials)
            if role is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"}
                )
            if roles and role not in roles:
                allowed = ", ".join(r.value for r in roles)
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the role {allowed}")
            return role

        return check
