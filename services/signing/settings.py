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
    seal_format: Literal["xmldsig", "xades-b"] = Field(
        "xmldsig",
        description="Plain XML-DSig, as the EUCARIS set-up manual requires (default), or XAdES baseline B "
        "(signing time and signing certificate signed too) (COC_SEAL_FORMAT)",
    )
