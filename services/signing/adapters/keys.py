"""The seal's key material, read from the files settings name: the one place signing touches them.

The key is read once, in the lifespan, and handed to ``Seal``; the seal itself
never reads a file (style.md, "Security habits from signxml"). Neither the key,
its password nor their paths' contents are ever logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.signing.seal import Seal
from services.signing.settings import SigningSettings


class SealNotConfigured(ValueError):
    """The settings name no seal key or certificate."""


def load_seal(settings: SigningSettings) -> Seal:
    """The seal of the configured key and certificate; a clear error when they are not configured."""
    if settings.seal_key is None or settings.seal_cert is None:
        raise SealNotConfigured(
            "set COC_SEAL_KEY and COC_SEAL_CERT (make a development pair with `coc keys dev`)"
        )
    password = settings.seal_key_password.get_secret_value().encode() if settings.seal_key_password else None
    return Seal.from_pem(
        settings.seal_key.read_bytes(), settings.seal_cert.read_bytes(), password, settings.seal_format
    )


@dataclass
class SealHolder:
    """The seal, set by the lifespan before the first message is consumed."""

    seal: Seal | None = None

    def get(self) -> Seal:
        if self.seal is None:
            raise RuntimeError("the lifespan loads the seal before consuming")
        return self.seal
