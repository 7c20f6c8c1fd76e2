"""Settings of the workspace: the session secret, how long a session lasts, page sizes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from services.workspace.identity import InvalidField, SessionRules, check_roles
from shared.settings import ServiceSettings


class WorkspaceSettings(ServiceSettings):
    """The workspace's settings (COC_ environment variables). The secret is never logged."""

    workspace_secret: SecretStr | None = Field(
        None,
        description="Key that signs session cookies and CSRF tokens, 32+ random bytes as text "
        "(COC_WORKSPACE_SECRET; the local stack generates one)",
    )
    session_hours: float = Field(
        10.0, gt=0, le=24 * 7, description="Longest a sign-in lasts, however busy (absolute lifetime)"
    )
    session_idle_minutes: float = Field(
        30.0, gt=0, le=24 * 60, description="A session without a request for this long ends (idle timeout)"
    )
    page_size: int = Field(50, ge=10, le=200, description="Rows per worklist page")
    live_interval_s: float = Field(1.0, gt=0, description="Shortest time between two live board updates")
    reissue_rate: float = Field(
        0.0,
        ge=0,
        le=100_000,
        description="Re-issue records published per second at most (0: as fast as the broker takes them); "
        "a re-issue of 100,000 then leaves room for the line's own builds",
    )
    secure_cookies: bool = Field(
        True,
        description="Mark cookies Secure (sent over HTTPS only) whenever the workspace does not listen on "
        "loopback; over HTTPS they always are. Turn off only to try the workspace over plain HTTP off loopback",
    )

    oidc_issuer: str | None = Field(
        None,
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        description="The company's OpenID provider (its issuer URL); set to offer company sign-in",
    )
    oidc_name: str = Field(
        "company account", min_length=1, max_length=60, description="Shown as 'Sign in with …'"
    )
    oidc_client_id: str | None = Field(None, max_length=200, description="The workspace's client id there")
    oidc_client_secret: SecretStr | None = Field(None, description="Its client secret (or the _file setting)")
    oidc_client_secret_file: Path | None = Field(None, description="A file holding the client secret")
    oidc_redirect_url: str | None = Field(
        None,
        max_length=500,
        pattern=r"^https?://[^\s]+/signin/oidc$",
        description="This workspace's address + /signin/oidc, as registered at the provider",
    )
    oidc_scopes: str = Field("openid profile email", max_length=300, pattern=r"^openid( [\w.:/-]+)*$")
    oidc_groups_claim: str = Field(
        "groups", min_length=1, max_length=100, description="The ID token's claim with groups"
    )
    oidc_group_roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Group → workspace roles, JSON: {"ecoc-reviewers": ["reviewer"], ...}',
    )

    @field_validator("oidc_group_roles")
    @classmethod
    def _known_roles(cls, mapping: dict[str, list[str]]) -> dict[str, list[str]]:
        for group, roles in mapping.items():
            if not 1 <= len(group) <= 256:
                raise ValueError(f"group name {group[:40]!r} must be 1 to 256 characters")
            try:
                check_roles(roles)
            except InvalidField as exc:
                raise ValueError(f"group {group[:40]!r}: {exc}") from None
        return mapping

    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_redirect_url)

    def oidc_secret(self) -> str:
        if self.oidc_client_secret is not None:
            return self.oidc_client_secret.get_secret_value()
        if self.oidc_client_secret_file is not None:
            try:
                return self.oidc_client_secret_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(
                    f"oidc_client_secret_file: cannot read {self.oidc_client_secret_file} ({type(exc).__name__})"
                ) from None
        raise ValueError("set COC_OIDC_CLIENT_SECRET or COC_OIDC_CLIENT_SECRET_FILE for company sign-in")

    def session_rules(self) -> SessionRules:
        return SessionRules(
            idle=dt.timedelta(minutes=self.session_idle_minutes),
            lifetime=dt.timedelta(hours=self.session_hours),
        )

    def secret(self) -> bytes:
        if self.workspace_secret is None:
            raise ValueError("set COC_WORKSPACE_SECRET (the local stack generates one in its state folder)")
        return self.workspace_secret.get_secret_value().encode()
