"""Settings of the signing service: where the seal key and certificate are. Never logged."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class SigningSettings(ServiceSettings):
    seal_key: Path | None = Field(None, description="Seal private key, PKCS#8 PEM (COC_SEAL_KEY)")
    seal_cert: Path | None = Field(None, description="Seal certificate, PEM (COC_SEAL_CERT)")
    seal_key_password: SecretStr | None = Field(None, description="Password of the key, if encrypted")
    seal_pkcs11_module: Path | None = Field(
        None,
        description="PKCS#11 module (.so) of the HSM holding the seal key; when set, no key file is read "
        "(COC_SEAL_PKCS11_MODULE)",
    )
    seal_pkcs11_token: str | None = Field(
        None, max_length=32, description="Label of the token holding the seal key (COC_SEAL_PKCS11_TOKEN)"
    )
    seal_pkcs11_key: str | None = Field(
        None, max_length=128, description="Label of the seal's private key on the token (COC_SEAL_PKCS11_KEY)"
    )
    seal_pkcs11_pin_file: Path | None = Field(
        None, description="File holding the token's user PIN, owner-only (COC_SEAL_PKCS11_PIN_FILE)"
    )
    seal_pkcs11_sessions: int = Field(
        2, ge=1, le=64, description="Token sessions kept open, and signing threads (COC_SEAL_PKCS11_SESSIONS)"
    )
    seal_holder: str | None = Field(
        None,
        max_length=150,
        description="The approval holder (ManufacturerName in its approvals) whose seal COC_SEAL_KEY/"
        "COC_SEAL_CERT or the token key is. Unset: that seal seals for every holder without a seal in the "
        "registry (coc.seals.v1), an installation for one holder. Set: it seals that holder's records only; "
        "a record of another holder without a registered seal waits, SEAL_MISSING (COC_SEAL_HOLDER)",
    )
    seal_format: Literal["xmldsig", "xades-b", "xades-t"] = Field(
        "xmldsig",
        description="Plain XML-DSig, as the EUCARIS set-up manual requires (default), XAdES baseline B "
        "(signing time and signing certificate signed too), or XAdES baseline T (B plus a timestamp "
        "from COC_TSA_URL over the signature) (COC_SEAL_FORMAT)",
    )
    tsa_url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://\S+$",
        description="RFC 3161 timestamp authority, HTTP(S) URL; needed by xades-t (COC_TSA_URL)",
    )
    tsa_trust: Path | None = Field(
        None, description="PEM certificates the TSA's certificate must chain to (COC_TSA_TRUST)"
    )
    tsa_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Wait for one TSA answer (COC_TSA_TIMEOUT_S)"
    )
