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
@click.option("--force", is_flag=True, help="replace existing seal.key and seal.crt")
def dev(out: Path, algorithm: Algorithm, force: bool) -> None:
    """Write a development seal key (seal.key) and self-signed certificate (seal.crt).

    A development seal only: never use it for certificates that leave this machine.
    """
    from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
    from services.signing.seal import SigningError, certificate_fingerprint

    try:
        seal = write_dev_seal(out, algorithm=algorithm, force=force)
    except (SigningError, OSError) as exc:
        raise BadInput(str(exc)) from exc
    print(f"wrote {out / KEY_FILE} (mode 0600) and {out / CERT_FILE}")
    print(f"certificate sha256 {certificate_fingerprint(seal.certificate)}")
    print("development seal only: never use it for certificates that leave this machine")
