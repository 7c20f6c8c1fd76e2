"""Settings of the workspace: the session secret, how long a session lasts, page sizes."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class WorkspaceSettings(ServiceSettings):
    """The workspace's settings (COC_ environment variables). The secret is never logged."""

    workspace_secret: SecretStr | None = Field(
        None,
        description="Key that signs session cookies and CSRF tokens, 32+ random bytes as text "
        "(COC_WORKSPACE_SECRET; the local stack generates one)",
    )
    session_hours: float = Field(10.0, gt=0, le=24 * 7, description="How long a sign-in lasts")
    page_size: int = Field(50, ge=10, le=200, description="Rows per worklist page")
    live_interval_s: float = Field(1.0, gt=0, description="Shortest time between two live board updates")
    secure_cookies: bool = Field(
        False, description="Mark the session cookie Secure (set when the workspace is served over HTTPS)"
    )

    def secret(self) -> bytes:
        if self.workspace_secret is None:
            raise ValueError("set COC_WORKSPACE_SECRET (the local stack generates one in its state folder)")
        return self.workspace_secret.get_secret_value().encode()
