"""The seal's key material, from the files or the PKCS#11 token settings name: the one place signing
touches them.

The key is read once, in the lifespan, and handed to ``Seal``; the seal itself
never reads a file (style.md, "Security habits from signxml"). Neither the key,
its password nor their paths' contents are ever logged.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from cryptography import x509

from services.signing.adapters.tsa import Tsa, load_roots
from services.signing.registry import Opener, SealUnusable
from services.signing.seal import Seal, SigningError
from services.signing.settings import SigningSettings
from shared.contracts.seals import SealRegistration

PIN_MAX_BYTES = 256
KEY_FILE_MAX_BYTES = 64_000


class SealNotConfigured(ValueError):
    """The settings name no seal key or certificate."""


def load_seal(settings: SigningSettings) -> Seal:
    """The seal of the configured key (a file, or a PKCS#11 token) and certificate."""
    if settings.seal_pkcs11_module is not None:
        return load_token_seal(settings)
    if settings.seal_key is None or settings.seal_cert is None:
        raise SealNotConfigured(
            "set COC_SEAL_KEY and COC_SEAL_CERT (make a development pair with `coc keys dev`)"
        )
    password = settings.seal_key_password.get_secret_value().encode() if settings.seal_key_password else None
    return Seal.from_pem(
        settings.seal_key.read_bytes(), settings.seal_cert.read_bytes(), password, settings.seal_format
    )


def load_token_seal(settings: SigningSettings) -> Seal:
    """The seal whose key is on a PKCS#11 token; no key file is read. The certificate is COC_SEAL_CERT."""
    from services.signing.adapters.pkcs11 import open_token_signer

    missing = [
        name
        for name, value in (
            ("COC_SEAL_PKCS11_TOKEN", settings.seal_pkcs11_token),
            ("COC_SEAL_PKCS11_KEY", settings.seal_pkcs11_key),
            ("COC_SEAL_PKCS11_PIN_FILE", settings.seal_pkcs11_pin_file),
            ("COC_SEAL_CERT", settings.seal_cert),
        )
        if not value
    ]
    if missing:
        raise SealNotConfigured(f"with COC_SEAL_PKCS11_MODULE set, also set {', '.join(missing)}")
    assert settings.seal_pkcs11_module and settings.seal_pkcs11_token and settings.seal_pkcs11_key
    assert settings.seal_pkcs11_pin_file and settings.seal_cert
    try:
        certificate = x509.load_pem_x509_certificate(settings.seal_cert.read_bytes())
    except ValueError as exc:
        raise SigningError(f"COC_SEAL_CERT is not a PEM certificate: {exc}") from None
    signer = open_token_signer(
        settings.seal_pkcs11_module,
        settings.seal_pkcs11_token,
        settings.seal_pkcs11_key,
        read_pin(settings.seal_pkcs11_pin_file),
        settings.seal_pkcs11_sessions,
    )
    try:
        return Seal(key=signer, certificate=certificate, format=settings.seal_format)
    except SigningError:
        signer.close()
        raise


def registered_opener(settings: SigningSettings) -> Opener:
    """Opens a holder's registered seal: its key file, or its key label on the token the settings name."""

    def open_registered(registration: SealRegistration) -> Seal:
        try:
            if registration.key_file is not None:
                return _registered_file_seal(registration, registration.key_file, settings)
            return _registered_token_seal(registration, settings)
        except (SigningError, SealNotConfigured, OSError) as exc:
            raise SealUnusable(str(exc) or type(exc).__name__) from None

    return open_registered


def _registered_file_seal(registration: SealRegistration, key_file: str, settings: SigningSettings) -> Seal:
    path = Path(key_file)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError(f"the key file {path} is readable by others: chmod 600 it")
    if path.stat().st_size > KEY_FILE_MAX_BYTES:
        raise SigningError(f"the key file {path} is larger than a seal key")
    password = settings.seal_key_password.get_secret_value().encode() if settings.seal_key_password else None
    return Seal.from_pem(
        path.read_bytes(), registration.certificate_pem.encode(), password, settings.seal_format
    )


def _registered_token_seal(registration: SealRegistration, settings: SigningSettings) -> Seal:
    from services.signing.adapters.pkcs11 import open_token_signer

    module, token, pin_file = (
        settings.seal_pkcs11_module,
        settings.seal_pkcs11_token,
        settings.seal_pkcs11_pin_file,
    )
    if module is None or not token or pin_file is None:
        raise SealNotConfigured(
            "a token key needs COC_SEAL_PKCS11_MODULE, COC_SEAL_PKCS11_TOKEN and COC_SEAL_PKCS11_PIN_FILE"
        )
    assert registration.pkcs11_key is not None
    signer = open_token_signer(
        module, token, registration.pkcs11_key, read_pin(pin_file), settings.seal_pkcs11_sessions
    )
    try:
        return Seal(key=signer, certificate=registration.certificate, format=settings.seal_format)
    except SigningError:
        signer.close()
        raise


def read_pin(pin_file: Path) -> str:
    """The token PIN from its file: owner-only, one line, at most 256 bytes. Never logged."""
    mode = pin_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningError(f"COC_SEAL_PKCS11_PIN_FILE {pin_file} is readable by others: chmod 600 it")
    data = pin_file.read_bytes()
    if len(data) > PIN_MAX_BYTES:
        raise SigningError(f"COC_SEAL_PKCS11_PIN_FILE holds more than {PIN_MAX_BYTES} bytes")
    pin = data.decode("utf-8", "replace").strip()
    if not pin or "\n" in pin:
        raise SigningError("COC_SEAL_PKCS11_PIN_FILE must hold the PIN on one line")
    return pin


@dataclass
class SealHolder:
    """The seal, set by the lifespan before the first message is consumed.

    A seal whose signer blocks (a token) signs on a pool of threads as large as its pool of
    sessions, so the event loop keeps reading and publishing; a file key signs inline, as
    before (it takes well under a millisecond and needs nothing outside the process).
    """

    seal: Seal | None = None
    timestamp: Tsa | None = None  # XAdES-T: the timestamp authority
    _threads: ThreadPoolExecutor | None = field(default=None, repr=False)

    def get(self) -> Seal:
        if self.seal is None:
            raise RuntimeError("the lifespan loads the seal before consuming")
        return self.seal

    async def sign(self, seal: Seal, unsigned_xml: bytes) -> bytes:
        """The sealed document; a TSA fault (XAdES-T) raises ``TimestampUnavailable``, a transient fault."""
        if not seal.signer.blocking and self.timestamp is None:
            return seal.sign(unsigned_xml)
        if self._threads is None:
            # A timestamp is a network round trip: several at once keep the loop's overlap of VINs busy.
            size = max(getattr(seal.signer, "size", 1), 8 if self.timestamp else 1)
            self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="seal")
        work = partial(seal.sign, unsigned_xml, timestamp=self.timestamp)
        return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    def close(self, others: Iterable[Seal] = ()) -> None:
        """Stop the signing threads, then close the signers of this seal and of ``others`` (registered ones)."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None
        closed: set[int] = set()
        for seal in (self.seal, *others):
            if seal is not None and id(seal.signer) not in closed and hasattr(seal.signer, "close"):
                closed.add(id(seal.signer))
                seal.signer.close()
        if self.timestamp is not None:
            self.timestamp.close()


def load_tsa(settings: SigningSettings) -> Tsa | None:
    """The timestamp authority when the format is XAdES-T; a clear error when it is not configured."""
    if settings.seal_format != "xades-t":
        return None
    if not settings.tsa_url or settings.tsa_trust is None:
        raise SealNotConfigured("COC_SEAL_FORMAT=xades-t needs COC_TSA_URL and COC_TSA_TRUST")
    try:
        roots = load_roots(settings.tsa_trust.read_bytes())
    except ValueError as exc:
        raise SigningError(str(exc)) from None
    return Tsa(settings.tsa_url, roots, timeout_s=settings.tsa_timeout_s)
