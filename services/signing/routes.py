"""Signing's HTTP: the public facts of the settings' seal, which the workspace's seals page lists.

The seal of the settings (COC_SEAL_KEY/COC_SEAL_CERT, or the token key with
COC_SEAL_CERT) is on no topic: the registry (coc.seals.v1) names only the
holders' own seals. This read says which certificate it is, whom it serves and
where its key is (a file's path or a token key's label); never the key itself.
Like every other service's reads, it needs a bearer token of any role.
(No ``from __future__ import annotations``: FastAPI reads the local dependency in the annotation.)
"""

from collections.abc import Callable
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, HTTPException, status

from services.signing.seal import Seal
from services.signing.settings import SigningSettings
from shared.auth import Authenticator, Role

ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one no role holds"},
    503: {"description": "The seal is not read yet (signing is starting)"},
}


def key_of(settings: SigningSettings) -> str:
    """Where the settings' seal key is, as the seals page shows a registered one's: a file, or a token key."""
    if settings.seal_pkcs11_module is not None:
        return f"token key {settings.seal_pkcs11_key}"
    return f"file {settings.seal_key}"


def facts(seal: Seal, holder: str | None, key: str) -> dict[str, Any]:
    """The certificate's public facts: subject, serial (hex), SHA-256 of its DER, validity, and whom it serves."""
    certificate = seal.certificate
    return {
        "holder": holder,
        "subject": certificate.subject.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "fingerprint": seal.fingerprint,
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "key": key,
        "certificate_pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }


def router(seal: Callable[[], Seal | None], holder: str | None, key: str, auth: Authenticator) -> APIRouter:
    """``seal`` gives the settings' seal once the lifespan has read it; ``holder`` is COC_SEAL_HOLDER, normalised."""
    api = APIRouter(prefix="/v1", tags=["signing"])
    reader = Depends(auth.require())

    @api.get("/seal", responses=ANSWERS)
    async def settings_seal(_role: Annotated[Role, reader]) -> dict[str, Any]:
        """The settings' seal: its certificate's public facts, and the holder it serves (null: every holder
        without a registered seal, and documents naming none)."""
        found = seal()
        if found is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the seal is not read yet")
        return facts(found, holder, key)

    return api
