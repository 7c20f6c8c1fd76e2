"""A development HSM: a SoftHSM2 token holding a seal key that cannot leave it.

``make_dev_token`` gives SoftHSM2 a private configuration and token folder under
``folder`` (never the system's /var/lib/softhsm), initialises a token with random
PINs, generates an RSA-2048 key pair on it (the private key CKA_SENSITIVE and not
CKA_EXTRACTABLE, so the token never hands it out) and has a throw-away development CA
issue the seal certificate for the token's public key, with the profile of
``devkit.keys`` (a token key cannot sign a self-signed certificate through
``cryptography``; the CA's key lives only in memory and is gone when this returns).
The user PIN is written owner-only; the SO PIN is not kept. For tests and local stacks
only: a production seal key is generated in the manufacturer's HSM by its owners.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devkit.keys import _write, seal_certificate_builder
from services.signing.seal import SigningError

SOFTHSM_MODULE: Final = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL: Final = "coc-dev-seal"
KEY_LABEL: Final = "seal"
CONF_FILE: Final = "softhsm2.conf"
PIN_FILE: Final = "user.pin"
CERT_FILE: Final = "seal.crt"
CA_FILE: Final = "seal-ca.crt"
TOKENS_DIR: Final = "tokens"

CA_SUBJECT: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ZA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Development Manufacturer (not for production)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Development eCoC Seal CA"),
    ]
)


@dataclass(frozen=True)
class DevToken:
    """Where a development token's files are, and the settings that point signing at it."""

    folder: Path
    module: Path = SOFTHSM_MODULE

    @property
    def conf(self) -> Path:
        return self.folder / CONF_FILE

    @property
    def pin_file(self) -> Path:
        return self.folder / PIN_FILE

    @property
    def cert(self) -> Path:
        return self.folder / CERT_FILE

    @property
    def ca(self) -> Path:
        return self.folder / CA_FILE

    def exists(self) -> bool:
        return self.cert.exists() and self.pin_file.exists() and self.conf.exists()

    def env(self) -> dict[str, str]:
        """The signing service's settings for this token (SOFTHSM2_CONF is SoftHSM2's own variable)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "COC_SEAL_PKCS11_MODULE": str(self.module),
            "COC_SEAL_PKCS11_TOKEN": TOKEN_LABEL,
            "COC_SEAL_PKCS11_KEY": KEY_LABEL,
            "COC_SEAL_PKCS11_PIN_FILE": str(self.pin_file),
            "COC_SEAL_CERT": str(self.cert),
        }


def make_dev_token(folder: Path, module: Path = SOFTHSM_MODULE, force: bool = False) -> DevToken:
    """Make the token, its non-extractable key and the seal certificate under ``folder``."""
    made = DevToken(folder, module)
    if made.exists() and not force:
        raise SigningError(f"a development token exists in {folder}; use --force to replace it")
    util = shutil.which("softhsm2-util")
    if util is None or not module.exists():
        raise SigningError("SoftHSM2 is not installed (Debian: apt-get install softhsm2; `make system-deps`)")
    if (folder / TOKENS_DIR).exists():
        shutil.rmtree(folder / TOKENS_DIR)
    (folder / TOKENS_DIR).mkdir(parents=True, mode=0o700)
    os.chmod(folder, 0o700)
    _write(made.conf, f"directories.tokendir = {folder / TOKENS_DIR}\nlog.level = ERROR\n".encode(), 0o600)
    pin, so_pin = secrets.token_hex(16), secrets.token_hex(16)
    _write(made.pin_file, f"{pin}\n".encode(), 0o600)
    env = {**os.environ, "SOFTHSM2_CONF": str(made.conf)}
    subprocess.run(
        [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", so_pin, "--pin", pin],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    public_key = _generate_key(made, pin)
    seal_cert, ca_cert = _issue_certificate(public_key)
    _write(made.cert, seal_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(made.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return made


def _generate_key(made: DevToken, pin: str) -> rsa.RSAPublicKey:
    from pkcs11 import Attribute, KeyType

    from services.signing.adapters.pkcs11 import library

    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    lib = library(made.module)
    lib.reinitialize()  # SoftHSM2 reads SOFTHSM2_CONF when initialised: see the new token folder
    token = lib.get_token(token_label=TOKEN_LABEL)
    with token.open(rw=True, user_pin=pin) as session:
        public, _private = session.generate_keypair(
            KeyType.RSA,
            2048,
            label=KEY_LABEL,
            store=True,
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
            },
        )
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _issue_certificate(public_key: rsa.RSAPublicKey) -> tuple[x509.Certificate, x509.Certificate]:
    """The seal certificate for the token's key, and the throw-away CA's certificate that issued it."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # clock skew
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(CA_SUBJECT)
        .issuer_name(CA_SUBJECT)
        .public_key(ca_key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    seal_cert = (
        seal_certificate_builder(public_key, CA_SUBJECT, start)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return seal_cert, ca_cert
