"""Company sign-in with OpenID Connect: the parts that need no network.

The authorization code flow with PKCE (RFC 7636, S256): the workspace sends the
browser to the provider with a fresh ``state``, ``nonce`` and code challenge,
the provider sends it back with a code, and the adapter
(``adapters.oidc``) trades the code for tokens. Here: the provider's discovery
document read, the sign-in and sign-out addresses built, and the ID token
checked (OpenID Connect Core 1.0, section 3.1.3.7): its signature by a key of
the provider's JWKS, its issuer, audience, expiry, issue time and nonce. Then
the person's name and roles from its claims, the roles through the
group → roles mapping of the settings.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from services.workspace.identity import InvalidField, PersonRole, check_name

ID_TOKEN_MAX: Final = 16_384
LEEWAY: Final = dt.timedelta(seconds=60)  # clocks of the workspace and the provider may differ this much
_RSA: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
}
_PSS: dict[str, hashes.HashAlgorithm] = {
    "PS256": hashes.SHA256(),
    "PS384": hashes.SHA384(),
    "PS512": hashes.SHA512(),
}
_EC: dict[str, tuple[hashes.HashAlgorithm, str, type[ec.EllipticCurve], int]] = {
    "ES256": (hashes.SHA256(), "P-256", ec.SECP256R1, 32),
    "ES384": (hashes.SHA384(), "P-384", ec.SECP384R1, 48),
}


class OidcError(Exception):
    """Company sign-in failed; ``str()`` is one line a person may read (no token, no secret)."""


@dataclass(frozen=True)
class Provider:
    """What the provider's discovery document says the workspace needs."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None
    basic_auth: bool = True  # client_secret_basic, else client_secret_post


def read_discovery(document: object, issuer: str) -> Provider:
    """The provider of ``/.well-known/openid-configuration``; its issuer must be exactly the configured one."""
    if not isinstance(document, Mapping):
        raise OidcError("the provider's discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise OidcError(f"the provider names itself {str(document.get('issuer'))[:100]!r}, not {issuer!r}")

    def url(name: str, required: bool = True) -> str | None:
        value = document.get(name)
        if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 1000:
            return value
        if required:
            raise OidcError(f"the provider's discovery document has no usable {name}")
        return None

    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return Provider(
        issuer=issuer,
        authorization_endpoint=str(url("authorization_endpoint")),
        token_endpoint=str(url("token_endpoint")),
        jwks_uri=str(url("jwks_uri")),
        end_session_endpoint=url("end_session_endpoint", required=False),
        basic_auth="client_secret_basic" in methods or "client_secret_post" not in methods,
    )


@dataclass(frozen=True)
class Attempt:
    """One sign-in under way: what the browser's round trip must bring back, and the PKCE verifier."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def fresh(cls) -> Attempt:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        return _b64(hashlib.sha256(self.verifier.encode("ascii")).digest())

    def state_ok(self, state: object) -> bool:
        return isinstance(state, str) and hmac.compare_digest(state.encode(), self.state.encode())


def authorization_url(
    provider: Provider, client_id: str, redirect_url: str, scopes: str, attempt: Attempt
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_url,
        "scope": scopes,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_challenge": attempt.challenge,
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return f"{provider.authorization_endpoint}{separator}{urlencode(query)}"


def end_session_url(provider: Provider, client_id: str, id_token: str, after: str) -> str | None:
    """RP-initiated sign-out (OpenID Connect RP-Initiated Logout 1.0), or None when the provider has none."""
    if provider.end_session_endpoint is None:
        return None
    query = {"client_id": client_id, "post_logout_redirect_uri": after}
    if id_token:
        query["id_token_hint"] = id_token
    separator = "&" if "?" in provider.end_session_endpoint else "?"
    return f"{provider.end_session_endpoint}{separator}{urlencode(query)}"


# -- the ID token ------------------------------------------------------------------------------


def verify_id_token(
    token: object, jwks: object, *, issuer: str, audience: str, nonce: str, now: dt.datetime
) -> dict[str, Any]:
    """The claims of ``token`` when signed by a key of ``jwks`` and meant for this sign-in, else ``OidcError``."""
    if not isinstance(token, str) or len(token) > ID_TOKEN_MAX or token.count(".") != 2:
        raise OidcError("the provider sent no ID token or a malformed one")
    head_text, body_text, signature_text = token.split(".")
    header, claims, signature = _json(head_text), _json(body_text), _unb64(signature_text)
    if header is None or claims is None or signature is None:
        raise OidcError("the ID token is not well-formed")
    alg, kid = header.get("alg"), header.get("kid")
    key = _key_for(jwks, alg, kid)
    if not _signed(key, str(alg), f"{head_text}.{body_text}".encode("ascii"), signature):
        raise OidcError("the ID token's signature is wrong")
    _check_claims(claims, issuer, audience, nonce, now)
    return claims


def key_known(jwks: object, token: str) -> bool:
    """Whether ``jwks`` holds the key ``token``'s header names (else: fetch the keys again, they may have rotated)."""
    header = _json(token.split(".", 1)[0]) if isinstance(token, str) else None
    if header is None:
        return False
    try:
        _key_for(jwks, header.get("alg"), header.get("kid"))
    except OidcError:
        return False
    return True


def _check_claims(
    claims: Mapping[str, Any], issuer: str, audience: str, nonce: str, now: dt.datetime
) -> None:
    if claims.get("iss") != issuer:
        raise OidcError("the ID token comes from another issuer")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or audience not in audiences:
        raise OidcError("the ID token is meant for another client")
    if len(audiences) > 1 and claims.get("azp") != audience:
        raise OidcError("the ID token names several audiences but not this client as its party")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise OidcError("the ID token has no expiry or issue time")
    if now - LEEWAY >= _time(exp):
        raise OidcError("the ID token has expired")
    if _time(iat) > now + LEEWAY:
        raise OidcError("the ID token was issued in the future")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise OidcError("the ID token's nonce is not this sign-in's")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise OidcError("the ID token names no subject")


def _time(value: float) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise OidcError("the ID token holds a time out of range") from None


def _key_for(jwks: object, alg: object, kid: object) -> Mapping[str, Any]:
    if not isinstance(alg, str) or alg not in {*_RSA, *_PSS, *_EC}:
        raise OidcError(f"the ID token's algorithm {str(alg)[:20]!r} is not accepted")
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    wanted_kty = "EC" if alg in _EC else "RSA"
    for key in keys if isinstance(keys, list) else []:
        if not isinstance(key, Mapping) or key.get("kty") != wanted_kty or key.get("use", "sig") != "sig":
            continue
        if (kid is None or key.get("kid") == kid) and key.get("alg", alg) == alg:
            return key
    raise OidcError("no key of the provider matches the ID token")


def _signed(key: Mapping[str, Any], alg: str, data: bytes, signature: bytes) -> bool:
    try:
        if alg in _EC:
            digest, crv, curve, size = _EC[alg]
            if key.get("crv") != crv or len(signature) != 2 * size:
                return False
            x, y = _int(key.get("x")), _int(key.get("y"))
            ec_key = ec.EllipticCurvePublicNumbers(x, y, curve()).public_key()
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            ec_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
            return True
        rsa_key = rsa.RSAPublicNumbers(_int(key.get("e")), _int(key.get("n"))).public_key()
        if rsa_key.key_size < 2048:
            return False
        if alg in _RSA:
            rsa_key.verify(signature, data, padding.PKCS1v15(), _RSA[alg])
        else:
            pss = padding.PSS(mgf=padding.MGF1(_PSS[alg]), salt_length=padding.PSS.DIGEST_LENGTH)
            rsa_key.verify(signature, data, pss, _PSS[alg])
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _int(value: object) -> int:
    raw = _unb64(value) if isinstance(value, str) else None
    if not raw:
        raise ValueError("a key number is missing")
    return int.from_bytes(raw, "big")


def _json(text: str) -> dict[str, Any] | None:
    raw = _unb64(text)
    try:
        value = json.loads(raw) if raw is not None else None
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


# -- who signed in -----------------------------------------------------------------------------


def roles_of(
    claims: Mapping[str, Any], claim: str, mapping: Mapping[str, list[str]]
) -> frozenset[PersonRole]:
    """The roles the person's groups give (the settings' mapping); groups the mapping does not name give none."""
    groups = claims.get(claim)
    groups = [groups] if isinstance(groups, str) else groups
    if not isinstance(groups, list):
        return frozenset()
    return frozenset(
        PersonRole(role) for group in groups if isinstance(group, str) for role in mapping.get(group, ())
    )


def name_of(claims: Mapping[str, Any]) -> str:
    """The name the workspace shows and records: the first of name, preferred_username, email's local part that fits."""
    email = claims.get("email")
    candidates = [claims.get("name"), claims.get("preferred_username")]
    candidates.append(email.split("@", 1)[0] if isinstance(email, str) else None)
    for candidate in candidates:
        if isinstance(candidate, str):
            try:
                return check_name(candidate)
            except InvalidField:
                continue
    raise OidcError("the provider gave no name the workspace can show (name, preferred_username or email)")
