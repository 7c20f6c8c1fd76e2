"""Development seals of approval holders: a key and certificate per holder, for the seal registry's tests.

The certificate names the holder as its organisation, so a test can read from
the X509Certificate of a signature whose seal it is. Development seals only.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devkit.keys import SEAL_KEY_USAGE, DevSeal


def holder_seal(holder: str, *, days: int = 730, now: dt.datetime | None = None) -> DevSeal:
    """A self-signed RSA-2048 seal whose subject's organisation is ``holder``, valid ``days`` from ``now``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, holder[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, "Development eCoC Seal"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(SEAL_KEY_USAGE, critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return DevSeal(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
        certificate=certificate,
    )


def write_holder_seal(folder: Path, holder: str, name: str, *, days: int = 730) -> tuple[Path, Path]:
    """``<name>.key`` (mode 0600) and ``<name>.crt`` in ``folder``: a development seal of ``holder``."""
    seal = holder_seal(holder, days=days)
    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(seal.key_pem)
    os.chmod(key, 0o600)
    cert.write_bytes(seal.cert_pem)
    return key, cert
