"""Development seal keys: a key pair and a self-signed certificate shaped like a seal.

For tests and local stacks only. A real seal is an eIDAS advanced (or qualified)
electronic seal certificate issued to the manufacturer (EUCARIS set-up manual); the
profile below mirrors what such a certificate carries so code that reads it (key
usage, subject with organizationIdentifier) is exercised before a real one arrives.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from services.signing.seal import SealKey, SigningError

__all__ = [
    "ALGORITHMS",
    "CERT_FILE",
    "KEY_FILE",
    "Algorithm",
    "DevSeal",
    "generate_dev_seal",
    "seal_certificate_builder",
    "write_dev_seal",
]

Algorithm = Literal["rsa-2048", "ecdsa-p256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("rsa-2048", "ecdsa-p256")
KEY_FILE: Final = "seal.key"
CERT_FILE: Final = "seal.crt"
VALIDITY: Final = dt.timedelta(days=730)

DEV_SUBJECT: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ZA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Development Manufacturer (not for production)"),
        # ETSI EN 319 412-1 §5.1.4: legal-person identifier, here a national trade
        # register ("NTR") style value that makes clear it is not a real one.
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRZA-DEVELOPMENT"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Development eCoC Seal"),
    ]
)


@dataclass(frozen=True)
class DevSeal:
    """A development seal as PEM: the PKCS#8 key and its self-signed certificate."""

    key_pem: bytes
    cert_pem: bytes
    certificate: x509.Certificate


# A seal signs content and commits to it: digitalSignature and nonRepudiation (contentCommitment),
# critical, as ETSI EN 319 412-2 §4.3.2 / 412-3 profile it; every development seal carries it.
SEAL_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _new_key(algorithm: Algorithm) -> SealKey:
    if algorithm == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise SigningError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def generate_dev_seal(algorithm: Algorithm = "rsa-2048", now: dt.datetime | None = None) -> DevSeal:
    """Make a key and a self-signed seal certificate valid for two years from ``now``."""
    key = _new_key(algorithm)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)  # clock skew
    certificate = seal_certificate_builder(key.public_key(), DEV_SUBJECT, start).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return DevSeal(key_pem=key_pem, cert_pem=cert_pem, certificate=certificate)


def seal_certificate_builder(
    public_key: CertificatePublicKeyTypes, issuer: x509.Name, start: dt.datetime
) -> x509.CertificateBuilder:
    """The development seal certificate's profile, for ``public_key``, issued by ``issuer`` (unsigned)."""
    return (
        x509.CertificateBuilder()
        .subject_name(DEV_SUBJECT)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)  # RFC 5280 §4.1.2.2
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(SEAL_KEY_USAGE, critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def write_dev_seal(out_dir: Path, algorithm: Algorithm = "rsa-2048", force: bool = False) -> DevSeal:
    """Write ``seal.key`` (mode 0600) and ``seal.crt`` into ``out_dir``.

    Existing files are kept unless ``force``: overwriting a seal key by accident would
    orphan every certificate it signed.
    """
    key_path, cert_path = out_dir / KEY_FILE, out_dir / CERT_FILE
    existing = [p for p in (key_path, cert_path) if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise SigningError(f"{names} already exist; use --force to replace them")
    seal = generate_dev_seal(algorithm)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(key_path, seal.key_pem, 0o600)
    _write(cert_path, seal.cert_pem, 0o644)
    return seal


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode, so the key is never readable by others, not even
    # for a moment; an existing file (with --force) is replaced, not rewritten in place.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # the umask may have narrowed it; state it exactly
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
