"""``coc keys dev``: a development seal key and certificate (``devkit.keys``).

The heavy modules (cryptography) are imported inside the command, so building the
``coc`` parser stays cheap for every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.errors import EXIT_STATUS, BadInput

if TYPE_CHECKING:
    from devkit.keys import Algorithm

ALGORITHM_CHOICES = ("rsa-2048", "ecdsa-p256")  # devkit.keys.ALGORITHMS (a unit test holds them equal)


def register(coc: click.Group) -> None:
    coc.add_command(keys)


@click.group(help="Seal keys.")
def keys() -> None:
    pass


@keys.command(epilog=EXIT_STATUS)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/keys"),
    help="folder for seal.key and seal.crt",
)
@click.option("--algorithm", type=click.Choice(ALGORITHM_CHOICES), default="rsa-2048", help="key type")
@click.option("--force", is_flag=True, help="replace existing seal.key and seal.crt (or the token)")
@click.option(
    "--hsm",
    is_flag=True,
    help="a SoftHSM2 token in the state folder (hsm/) with a non-extractable key, instead of a key file",
)
def dev(out: Path, algorithm: Algorithm, force: bool, hsm: bool) -> None:
    """Write a development seal key (seal.key) and self-signed certificate (seal.crt).

    With --hsm: a SoftHSM2 token holding a generated RSA-2048 key that cannot leave it, a
    certificate for it, the PIN in an owner-only file, and the settings that point signing at it.
    A development seal only: never use it for certificates that leave this machine.
    """
    from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
    from services.signing.seal import SigningError, certificate_fingerprint

    if hsm:
        _dev_token(force)
        return
    try:
        seal = write_dev_seal(out, algorithm=algorithm, force=force)
    except (SigningError, OSError) as exc:
        raise BadInput(str(exc)) from exc
    print(f"wrote {out / KEY_FILE} (mode 0600) and {out / CERT_FILE}")
    print(f"certificate sha256 {certificate_fingerprint(seal.certificate)}")
    print("development seal only: never use it for certificates that leave this machine")


def _dev_token(force: bool) -> None:
    from cryptography import x509

    from devkit.hsm import make_dev_token
    from services.signing.seal import SigningError, certificate_fingerprint
    from shared.settings import CocSettings

    folder = CocSettings().state_dir / "hsm"
    try:
        token = make_dev_token(folder, force=force)
    except (SigningError, OSError) as exc:
        raise BadInput(str(exc)) from exc
    certificate = x509.load_pem_x509_certificate(token.cert.read_bytes())
    print(
        f"made a SoftHSM2 token in {folder} (its key cannot be exported; PIN in {token.pin_file}, mode 0600)"
    )
    print(
        f"certificate sha256 {certificate_fingerprint(certificate)}, issued by the development CA {token.ca}"
    )
    print("settings for the signing service:")
    for name, value in token.env().items():
        print(f"  {name}={value}")
    print("`coc stack up` uses this token when COC_SEAL_PKCS11_MODULE is set in its environment")
    print("development seal only: never use it for certificates that leave this machine")
