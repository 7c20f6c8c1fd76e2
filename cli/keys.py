"""``coc keys dev``: a development seal key and certificate (``devkit.keys``).

The heavy modules (cryptography) are imported inside the command, so building the
``coc`` parser stays cheap for every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.main import CommandError

ALGORITHM_CHOICES = ("rsa-2048", "ecdsa-p256")  # the same as devkit.keys.ALGORITHMS


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="seal keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    dev = keys_sub.add_parser(
        "dev", help="write a development seal key (seal.key) and self-signed certificate (seal.crt)"
    )
    dev.add_argument(
        "--out",
        type=Path,
        default=Path("out/keys"),
        help="folder for seal.key and seal.crt (default: out/keys)",
    )
    dev.add_argument(
        "--algorithm", choices=ALGORITHM_CHOICES, default="rsa-2048", help="key type (default rsa-2048)"
    )
    dev.add_argument("--force", action="store_true", help="replace existing seal.key and seal.crt")
    dev.set_defaults(func=keys_dev)


def keys_dev(args: argparse.Namespace) -> int:
    from devkit.keys import CERT_FILE, KEY_FILE, write_dev_seal
    from services.signing.seal import SigningError, certificate_fingerprint

    try:
        seal = write_dev_seal(args.out, algorithm=args.algorithm, force=args.force)
    except (SigningError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"wrote {args.out / KEY_FILE} (mode 0600) and {args.out / CERT_FILE}")
    print(f"certificate sha256 {certificate_fingerprint(seal.certificate)}")
    print("development seal only: never use it for certificates that leave this machine")
    return 0
