"""The company's OpenID provider over HTTP: its discovery document, its keys, the code traded for tokens.

The discovery document and the keys are fetched on first use and kept; the
keys again when an ID token names one not held (the provider rotated them),
the document again after a failure. Every call has a timeout, every answer a
size cap, and a failure is an ``OidcError`` of one line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from services.workspace.oidc import (
    Attempt,
    OidcError,
    Provider,
    key_known,
    read_discovery,
    verify_id_token,
)

ANSWER_MAX = 256 * 1024


class OidcClient:
    """The workspace as a client of ``issuer``."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_url: str,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer  # exactly as the provider names itself: compared, never normalised
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_url = redirect_url
        self.http = http or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self._provider: Provider | None = None
        self._jwks: dict[str, Any] | None = None

    async def provider(self) -> Provider:
        if self._provider is None:
            document = await self._get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
            self._provider = read_discovery(document, self.issuer)
        return self._provider

    async def sign_in(self, code: str, attempt: Attempt, now: dt.datetime) -> tuple[dict[str, Any], str]:
        """The verified ID token's claims, and the token itself, for the code the provider sent back."""
        provider = await self.provider()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_url,
            "code_verifier": attempt.verifier,
        }
        auth: httpx.BasicAuth | None = None
        if provider.basic_auth:
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        answer = await self._call("POST", provider.token_endpoint, data=form, auth=auth)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the provider's token answer holds no ID token")
        jwks = await self._keys(provider, refresh=False)
        if not key_known(jwks, id_token):
            jwks = await self._keys(provider, refresh=True)
        claims = verify_id_token(
            id_token, jwks, issuer=provider.issuer, audience=self.client_id, nonce=attempt.nonce, now=now
        )
        return claims, id_token

    async def close(self) -> None:
        await self.http.aclose()

    async def _keys(self, provider: Provider, refresh: bool) -> dict[str, Any]:
        if self._jwks is None or refresh:
            self._jwks = await self._get(provider.jwks_uri)
        return self._jwks

    async def _get(self, url: str) -> dict[str, Any]:
        return await self._call("GET", url)

    async def _call(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, url, **options)
        except httpx.HTTPError as exc:
            self._provider = None
            raise OidcError(f"the company's sign-in service did not answer ({type(exc).__name__})") from None
        if len(response.content) > ANSWER_MAX:
            raise OidcError("the company's sign-in service answered too much")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            detail = f": {str(error)[:80]}" if isinstance(error, str) else ""
            raise OidcError(f"the company's sign-in service refused (HTTP {response.status_code}{detail})")
        return body
