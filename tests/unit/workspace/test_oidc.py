"""Company sign-in's checks (pure): the ID token, the discovery document, PKCE, names and roles from claims."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from services.workspace.identity import PersonRole, csrf_token
from services.workspace.oidc import (
    Attempt,
    OidcError,
    Provider,
    authorization_url,
    end_session_url,
    key_known,
    name_of,
    read_discovery,
    roles_of,
    verify_id_token,
)
from services.workspace.routes import deps
from services.workspace.settings import WorkspaceSettings
from tests.unit.workspace.fakes import PASSWORD, PEOPLE, SECRET, Site

pytestmark = pytest.mark.unit

ISSUER, CLIENT = "https://login.plant.example/realm", "ecoc-workspace"
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def number(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def jwks() -> dict[str, Any]:
    rsa_numbers = RSA_KEY.public_key().public_numbers()
    ec_numbers = EC_KEY.public_key().public_numbers()
    return {
        "keys": [
            {"kty": "RSA", "kid": "r1", "use": "sig", "n": number(rsa_numbers.n), "e": number(rsa_numbers.e)},
            {
                "kty": "EC",
                "kid": "e1",
                "crv": "P-256",
                "x": number(ec_numbers.x, 32),
                "y": number(ec_numbers.y, 32),
            },
        ]
    }


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "u-17",
        "exp": int((T0 + dt.timedelta(minutes=5)).timestamp()),
        "iat": int(T0.timestamp()),
        "nonce": "the nonce",
        "name": "Anna Berg",
        "groups": ["ecoc-reviewers"],
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def token(body: dict[str, Any], alg: str = "RS256", kid: str = "r1") -> str:
    head = b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    data = f"{head}.{b64(json.dumps(body).encode())}".encode()
    if alg == "ES256":
        r, s = decode_dss_signature(EC_KEY.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = RSA_KEY.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{data.decode()}.{b64(signature)}"


def verify(raw: str, now: dt.datetime = T0) -> dict[str, Any]:
    return verify_id_token(raw, jwks(), issuer=ISSUER, audience=CLIENT, nonce="the nonce", now=now)


@pytest.mark.parametrize(("alg", "kid"), [("RS256", "r1"), ("ES256", "e1")])
def test_an_id_token_signed_by_a_key_of_the_provider_and_meant_for_this_sign_in_gives_its_claims(
    alg: str, kid: str
) -> None:
    assert verify(token(claims(), alg, kid))["sub"] == "u-17"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"aud": "another-client"}, "another client"),
        ({"aud": [CLIENT, "another-client"]}, "several audiences"),
        ({"exp": int((T0 - dt.timedelta(minutes=2)).timestamp())}, "expired"),
        ({"iat": int((T0 + dt.timedelta(minutes=5)).timestamp())}, "in the future"),
        ({"nonce": "another sign-in's nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": None}, "no expiry"),
        ({"sub": ""}, "no subject"),
    ],
)
def test_an_id_token_for_another_issuer_client_time_or_sign_in_is_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(OidcError, match=message):
        verify(token(claims(**changes)))


def test_several_audiences_pass_when_this_client_is_the_authorised_party() -> None:
    assert verify(token(claims(aud=[CLIENT, "api"], azp=CLIENT)))["azp"] == CLIENT


def test_an_id_token_whose_body_was_changed_after_signing_is_refused() -> None:
    head, _body, signature = token(claims()).split(".")
    forged = b64(json.dumps(claims(groups=["ecoc-leads"])).encode())

    with pytest.raises(OidcError, match="signature"):
        verify(f"{head}.{forged}.{signature}")


def test_an_unsigned_token_or_one_signed_by_an_unknown_key_is_refused() -> None:
    head = b64(json.dumps({"alg": "none"}).encode())
    with pytest.raises(OidcError, match="algorithm"):
        verify(f"{head}.{b64(json.dumps(claims()).encode())}.")
    with pytest.raises(OidcError, match="no key"):
        verify(token(claims(), kid="rotated"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    head, body, _ = token(claims()).split(".")
    alien = other.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(OidcError, match="signature"):
        verify(f"{head}.{body}.{b64(alien)}")


@pytest.mark.parametrize(
    "garbage", [None, 17, "", "a.b", "a.b.c", "é.é.é", "x" * 20_000, "..", "e30.e30.e30"]
)
def test_garbage_is_refused_with_an_oidc_error_never_another(garbage: object) -> None:
    with pytest.raises(OidcError):
        verify(garbage)  # type: ignore[arg-type]


def test_an_unknown_key_id_says_the_keys_must_be_fetched_again() -> None:
    assert key_known(jwks(), token(claims()))
    assert not key_known(jwks(), token(claims(), kid="rotated"))


def test_the_discovery_document_must_name_the_configured_issuer_exactly() -> None:
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "end_session_endpoint": f"{ISSUER}/logout",
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    }

    provider = read_discovery(document, ISSUER)
    assert provider.end_session_endpoint == f"{ISSUER}/logout" and not provider.basic_auth
    with pytest.raises(OidcError, match="names itself"):
        read_discovery({**document, "issuer": ISSUER + "/"}, ISSUER)
    with pytest.raises(OidcError, match="token_endpoint"):
        read_discovery({**document, "token_endpoint": "javascript:alert(1)"}, ISSUER)


PROVIDER = Provider(ISSUER, f"{ISSUER}/auth", f"{ISSUER}/token", f"{ISSUER}/jwks", f"{ISSUER}/logout")


def test_the_sign_in_address_carries_state_nonce_and_an_s256_challenge_of_the_verifier() -> None:
    attempt = Attempt.fresh()

    query = parse_qs(
        urlsplit(authorization_url(PROVIDER, CLIENT, "https://ws/signin/oidc", "openid", attempt)).query
    )

    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["state"] == [attempt.state] and query["nonce"] == [attempt.nonce]
    assert query["code_challenge"] == [b64(hashlib.sha256(attempt.verifier.encode()).digest())]
    assert attempt.verifier not in str(query)
    assert attempt.state_ok(attempt.state) and not attempt.state_ok("x") and not attempt.state_ok(None)
    assert Attempt.fresh().state != attempt.state


def test_signing_out_at_the_provider_names_the_client_the_hint_and_where_to_come_back() -> None:
    url = end_session_url(PROVIDER, CLIENT, "the.id.token", "https://ws/signin")

    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "client_id": [CLIENT],
        "id_token_hint": ["the.id.token"],
        "post_logout_redirect_uri": ["https://ws/signin"],
    }
    no_logout = Provider(ISSUER, "a", "b", "c", None)
    assert end_session_url(no_logout, CLIENT, "t", "https://ws/signin") is None


def test_roles_come_from_the_mapped_groups_and_unmapped_groups_give_none() -> None:
    mapping = {"ecoc-reviewers": ["reviewer"], "ecoc-leads": ["compliance-lead", "viewer"]}

    assert roles_of({"groups": ["all-staff", "ecoc-reviewers"]}, "groups", mapping) == {PersonRole.REVIEWER}
    assert roles_of({"roles": "ecoc-leads"}, "roles", mapping) == {
        PersonRole.COMPLIANCE_LEAD,
        PersonRole.VIEWER,
    }
    assert roles_of({"groups": ["all-staff"]}, "groups", mapping) == frozenset()
    assert roles_of({"groups": {"ecoc-reviewers": 1}}, "groups", mapping) == frozenset()
    assert roles_of({}, "groups", mapping) == frozenset()


def test_the_name_shown_is_the_first_of_name_username_and_email_that_fits_the_name_rule() -> None:
    assert name_of({"name": "Anna Berg", "preferred_username": "aberg"}) == "Anna Berg"
    assert name_of({"name": "<script>", "preferred_username": "aberg"}) == "aberg"
    assert name_of({"email": "anna.berg@plant.example"}) == "anna.berg"
    with pytest.raises(OidcError, match="no name"):
        name_of({"name": "<b>", "email": 7})


# -- the sign-in's round trip through the workspace's pages ------------------------------------


class FakeProviderClient:
    """The adapter's surface: the provider, and the code traded for the claims a test chose."""

    client_id = CLIENT

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.traded: list[tuple[str, Attempt]] = []

    async def provider(self) -> Provider:
        return PROVIDER

    async def sign_in(self, code: str, attempt: Attempt, now: dt.datetime) -> tuple[dict[str, Any], str]:
        self.traded.append((code, attempt))
        return self.claims, "the.id.token"


def company_site(claims: dict[str, Any]) -> tuple[Site, FakeProviderClient]:
    settings = WorkspaceSettings(
        workspace_secret=SECRET,
        page_size=10,
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT,
        oidc_client_secret="s",
        oidc_name="Plant ID",
        oidc_redirect_url="https://ws.plant.example/signin/oidc",
        oidc_group_roles={"ecoc-reviewers": ["reviewer"]},
    )
    site = Site(settings=settings)
    client = FakeProviderClient(claims)
    site.app.dependency_overrides[deps.oidc] = lambda: client
    return site, client


def start(site: Site, target: str = "/approvals") -> dict[str, list[str]]:
    page = site.client.get("/signin", params={"next": target})
    assert "Sign in with Plant ID" in page.text
    answer = site.client.get("/signin/oidc/start", params={"next": target})
    assert answer.status_code == 303 and answer.headers["location"].startswith(f"{ISSUER}/auth?")
    return parse_qs(urlsplit(answer.headers["location"]).query)


def test_a_company_sign_in_with_the_state_sent_starts_a_session_with_the_groups_roles() -> None:
    site, client = company_site(claims())
    query = start(site)

    back = site.client.get("/signin/oidc", params={"code": "the code", "state": query["state"][0]})

    assert back.status_code == 303 and back.headers["location"] == "/approvals"
    ((code, attempt),) = client.traded
    assert code == "the code" and attempt.nonce == query["nonce"][0]
    (stored,) = site.stored.documents.values()
    assert stored["name"] == "Anna Berg" and stored["roles"] == ["reviewer"] and stored["source"] == "oidc"
    assert "Anna Berg" in site.client.get("/approvals").text


def test_an_answer_with_another_state_or_without_the_attempts_cookie_signs_no_one_in() -> None:
    site, client = company_site(claims())
    start(site)

    forged = site.client.get("/signin/oidc", params={"code": "c", "state": "an attacker's state"})
    assert forged.status_code == 400 and "another sign-in" in forged.text
    site.client.cookies.clear()
    lost = site.client.get("/signin/oidc", params={"code": "c", "state": "s"})
    assert lost.status_code == 400 and "not started here" in lost.text
    assert client.traded == [] and site.stored.documents == {}


def test_the_attempt_expires_after_ten_minutes() -> None:
    site, client = company_site(claims())
    query = start(site)
    site.clock.advance(601)

    late = site.client.get("/signin/oidc", params={"code": "c", "state": query["state"][0]})

    assert late.status_code == 400 and client.traded == []


def test_a_company_account_in_no_mapped_group_is_refused() -> None:
    site, _client = company_site(claims(groups=["all-staff"]))
    query = start(site)

    refused = site.client.get("/signin/oidc", params={"code": "c", "state": query["state"][0]})

    assert refused.status_code == 400 and "no group that holds a role" in refused.text
    assert site.stored.documents == {}


def test_signing_out_of_a_company_session_ends_it_and_goes_on_to_the_providers_sign_out() -> None:
    site, _client = company_site(claims())
    query = start(site)
    site.client.get("/signin/oidc", params={"code": "c", "state": query["state"][0]})
    (key,) = site.stored.documents
    csrf = csrf_token(key, site.settings.secret())

    out = site.client.post("/signout", data={"csrf": csrf})

    assert out.status_code == 303 and out.headers["location"].startswith(f"{ISSUER}/logout?")
    assert parse_qs(urlsplit(out.headers["location"]).query)["post_logout_redirect_uri"] == [
        "https://ws.plant.example/signin"
    ]
    assert site.stored.documents == {}


def test_without_company_sign_in_set_up_there_is_no_button_and_its_pages_are_not_found() -> None:
    site = Site()

    assert "/signin/oidc/start" not in site.client.get("/signin").text
    assert site.client.get("/signin/oidc/start").status_code == 404
    assert site.client.get("/signin/oidc", params={"code": "c", "state": "s"}).status_code == 404


def test_the_client_secret_comes_from_its_setting_or_file_and_an_unreadable_file_is_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "secret").write_text("from the file\n")
    from_file = WorkspaceSettings(oidc_client_secret_file=tmp_path / "secret")
    assert from_file.oidc_secret() == "from the file"
    with pytest.raises(
        ValueError, match=r"^oidc_client_secret_file: cannot read .*missing \(FileNotFoundError\)$"
    ):
        WorkspaceSettings(oidc_client_secret_file=tmp_path / "missing").oidc_secret()


def test_a_group_mapped_to_an_unknown_role_is_refused_naming_the_group_and_role() -> None:
    with pytest.raises(ValueError, match="group 'ecoc-admins': role: unknown role 'admin'"):
        WorkspaceSettings(oidc_group_roles={"ecoc-admins": ["admin"]})


def test_after_a_failed_company_sign_in_the_password_form_on_that_page_still_works() -> None:
    site, _client = company_site(claims(groups=["all-staff"]))
    query = start(site)
    site.client.cookies.delete(deps.PRESESSION_COOKIE)  # strict: not sent on the provider's redirect back

    refused = site.client.get("/signin/oidc", params={"code": "c", "state": query["state"][0]})
    assert refused.status_code == 400 and "no group that holds a role" in refused.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', refused.text)
    assert csrf is not None
    reviewer = PEOPLE[PersonRole.REVIEWER]
    form = {"name": reviewer.name, "password": PASSWORD, "csrf": csrf.group(1)}
    assert site.client.post("/signin", data=form).status_code == 303


class SilentProvider(FakeProviderClient):
    async def provider(self) -> Provider:
        raise OidcError("the company's sign-in service did not answer (ConnectTimeout)")


def test_a_provider_that_does_not_answer_shows_the_sign_in_page_saying_so() -> None:
    site, _client = company_site(claims())
    site.app.dependency_overrides[deps.oidc] = lambda: SilentProvider(claims())

    answer = site.client.get("/signin/oidc/start", params={"next": "/approvals"})

    assert answer.status_code == 502 and "did not answer" in answer.text and 'name="password"' in answer.text
