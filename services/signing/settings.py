"""Settings of the signing service: where the seal key and certificate are. Never logged."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class SigningSettings(ServiceSettings):
    seal_key: Path = Field(description="Seal private key, PKCS#8 PEM (COC_SEAL_KEY)")
    seal_cert: Path = Field(description="Seal certificate, PEM (COC_SEAL_CERT)")
    seal_key_password: SecretStr | None = Field(None, description="Password of the key, if encrypted")
