"""Settings of the signing service: where the seal key and certificate are. Never logged."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class SigningSettings(ServiceSettings):
    seal_key: Path | None = Field(None, description="Seal private key, PKCS#8 PEM (COC_SEAL_KEY)")
    seal_cert: Path | None = Field(None, description="Seal certificate, PEM (COC_SEAL_CERT)")
    seal_key_password: SecretStr | None = Field(None, description="Password of the key, if encrypted")

    def load_seal_pems(self) -> tuple[bytes, bytes, bytes | None]:
        """Key PEM, certificate PEM and password; a clear error when they are not configured."""
        if self.seal_key is None or self.seal_cert is None:
            raise ValueError(
                "set COC_SEAL_KEY and COC_SEAL_CERT (make a development pair with `coc keys dev`)"
            )
        password = self.seal_key_password.get_secret_value().encode() if self.seal_key_password else None
        return self.seal_key.read_bytes(), self.seal_cert.read_bytes(), password
