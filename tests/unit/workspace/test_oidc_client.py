"""The OpenID provider's client over HTTP (an httpx mock transport in the provider's place)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from services.workspace.adapters.oidc import OidcClient
from services.workspace.oidc import Attempt, OidcError
from tests.unit.workspace.test_oidc import CLIENT, ISSUER, T0, claims, jwks, token

pytestmark = pytest.mark.unit

SECRET = "the client's secret"
REDIRECT = "https://ws.plant.example/signin/oidc"
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
}


class FakeProvider:
    def __init__(self, keys: list[dict[str, Any]], id_token: str, token_status: int = 200) -> None:
        self.keys, self.id_token, self.token_status = keys, id_token, token_status
        self.requests: list[httpx.Request] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=DISCOVERY)
        if path.endswith("/jwks"):
            return httpx.Response(200, json=self.keys.pop(0) if len(self.keys) > 1 else self.keys[0])
        if path.endswith("/token") and self.token_status == 200:
            return httpx.Response(
                200, json={"id_token": self.id_token, "access_token": "a", "token_type": "Bearer"}
            )
        return httpx.Response(self.token_status, json={"error": "invalid_grant"})

    def client(self) -> OidcClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return OidcClient(ISSUER, CLIENT, SECRET, REDIRECT, http)


ATTEMPT = Attempt("the state", "the nonce", "the verifier" * 4)


async def test_the_code_is_traded_with_the_verifier_and_the_clients_credentials_for_checked_claims() -> None:
    provider = FakeProvider([jwks()], token(claims()))

    found, id_token = await provider.client().sign_in("the code", ATTEMPT, T0)

    assert found["name"] == "Anna Berg" and id_token == provider.id_token
    (trade,) = [r for r in provider.requests if r.url.path.endswith("/token")]
    form = parse_qs(trade.content.decode())
    assert form["code"] == ["the code"] and form["code_verifier"] == [ATTEMPT.verifier]
    assert form["redirect_uri"] == [REDIRECT] and form["grant_type"] == ["authorization_code"]
    assert (
        trade.headers["authorization"] == "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
    )


async def test_keys_the_provider_rotated_are_fetched_again_once() -> None:
    old = {"keys": [{**jwks()["keys"][0], "kid": "old"}]}
    provider = FakeProvider([old, jwks()], token(claims()))

    found, _ = await provider.client().sign_in("c", ATTEMPT, T0)

    assert found["sub"] == "u-17"
    assert len([r for r in provider.requests if r.url.path.endswith("/jwks")]) == 2


async def test_a_refused_code_is_one_line_naming_the_providers_error_and_no_secret() -> None:
    provider = FakeProvider([jwks()], token(claims()), token_status=400)

    with pytest.raises(OidcError, match=r"refused \(HTTP 400: invalid_grant\)") as caught:
        await provider.client().sign_in("c", ATTEMPT, T0)
    assert SECRET not in str(caught.value)


async def test_a_provider_that_does_not_answer_is_asked_again_next_time() -> None:
    provider = FakeProvider([jwks()], token(claims()))
    client = provider.client()
    provider.down = True

    with pytest.raises(OidcError, match="did not answer"):
        await client.provider()
    provider.down = False
    assert (await client.provider()).token_endpoint == f"{ISSUER}/token"


async def test_an_id_token_for_another_sign_in_is_refused_after_the_trade() -> None:
    provider = FakeProvider([jwks()], token(claims(nonce="someone else's")))

    with pytest.raises(OidcError, match="nonce"):
        await provider.client().sign_in("c", ATTEMPT, T0 + dt.timedelta(seconds=1))
